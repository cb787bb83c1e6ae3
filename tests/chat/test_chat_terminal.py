"""`crush-ls chat` as a person uses it: on a pseudo-terminal, with keys, Ctrl-C and questions."""

from __future__ import annotations

import json
import time
from pathlib import Path

WRITE_THEN_DONE = [
    {"step": 0, "events": [{"toolCall": {"name": "write", "input": {"file_path": "hello.txt", "content": "hi\n"}}}]},
    {"step": 1, "events": [{"text": "Finished the file task."}]},
]
# Streams a first sentence, then hangs: only a cancel ends this run.
SLOW = [{"events": [{"text": "Working on it."}, {"sleepMs": 60000}, {"text": "never shown"}]}]


def stored_messages(run_cli) -> list[dict]:
    (session,) = json.loads(run_cli("sessions", "--json").stdout)["sessions"]
    return json.loads(run_cli("sessions", "show", session["id"], "--json").stdout)["messages"]


def test_permission_is_asked_and_allow_runs_the_tool(terminal, write_script, workspace: Path):
    term = terminal("chat", "--script", write_script(WRITE_THEN_DONE), "make a file")

    term.expect(r"Permission needed: write wants to write .*hello\.txt")
    term.expect(r"\[y\] allow")
    term.send("y")

    term.expect("Finished the file task.")
    term.expect("end_turn")
    assert term.wait() == 0
    assert (workspace / "hello.txt").read_text() == "hi\n"


def test_permission_denied_on_the_terminal_leaves_the_file_alone(terminal, write_script, workspace: Path):
    term = terminal("chat", "--script", write_script(WRITE_THEN_DONE), "make a file")

    term.expect(r"\[y\] allow")
    term.send("n")

    term.expect("deny")
    term.expect("end_turn")
    assert term.wait() == 0
    assert not (workspace / "hello.txt").exists()


def test_ctrl_c_cancels_the_running_turn(terminal, write_script, run_cli):
    term = terminal("chat", "--script", write_script(SLOW), "slow task")
    term.expect("Working on it.")

    pressed = time.monotonic()
    term.ctrl_c()

    term.expect("canceled")
    assert term.wait() == 130
    assert time.monotonic() - pressed < 10  # not the 60 s the script sleeps
    assistant = [m for m in stored_messages(run_cli) if m["role"] == "assistant"][-1]
    assert [p["reason"] for p in assistant["parts"] if p["type"] == "finish"] == ["canceled"]
    assert "never shown" not in term.output


def test_interactive_loop_keeps_one_session_and_takes_multiline_prompts(terminal, write_script, run_cli, chat_env):
    script = write_script([
        {"when": "line one\nline two", "events": [{"text": "Got both lines."}]},
        {"when": "hello", "events": [{"text": "Hello, person."}]},
    ])
    term = terminal("chat", "--script", script)

    term.expect("❯")
    term.send("hello\r")
    term.expect("Hello, person.")
    term.expect("end_turn")
    term.expect("❯")
    term.send("line one\x1b\r")  # Esc Enter: a new line, not a send
    term.send("line two\r")
    term.expect("Got both lines.")
    term.expect("❯")
    term.send("\x04")  # Ctrl-D

    assert term.wait() == 0
    users = [m["parts"][0]["text"] for m in stored_messages(run_cli) if m["role"] == "user"]
    assert users == ["hello", "line one\nline two"]
    history = Path(chat_env["XDG_STATE_HOME"]) / "crush-ls" / "chat-history"
    assert "+line one\n+line two" in history.read_text()  # prompt_toolkit's format: "+" per line


def test_after_a_cancelled_turn_the_loop_goes_on(terminal, write_script):
    script = write_script([{"when": "slow", "events": SLOW[0]["events"]},
                           {"when": "hello", "events": [{"text": "Hello again."}]}])
    term = terminal("chat", "--script", script)
    term.expect("❯")
    term.send("slow task\r")
    term.expect("Working on it.")

    term.ctrl_c()
    term.expect("canceled")
    term.expect("❯")
    term.send("hello\r")

    term.expect("Hello again.")
    term.expect("end_turn")
    term.expect("❯")
    term.ctrl_c()  # on an empty line: leave
    assert term.wait() == 130


def test_ctrl_c_after_a_cancel_quits_the_loop(terminal, write_script):
    term = terminal("chat", "--script", write_script(SLOW))
    term.expect("❯")
    term.send("slow task\r")
    term.expect("Working on it.")

    term.ctrl_c()
    term.expect("Canceling")
    term.ctrl_c()

    assert term.wait() == 130


def test_a_question_the_server_withdraws_goes_away(terminal, write_script, workspace: Path):
    options = json.dumps({"permissions": {"timeoutMs": 300}})
    term = terminal("chat", "--init-options", options, "--script", write_script(WRITE_THEN_DONE), "make a file")

    term.expect(r"\[y\] allow")  # and nobody answers

    term.expect("timeout")
    term.expect("end_turn")
    assert term.wait() == 0
    assert not (workspace / "hello.txt").exists()


def test_ctrl_c_at_a_question_denies_and_cancels(terminal, write_script, workspace: Path):
    term = terminal("chat", "--script", write_script(WRITE_THEN_DONE), "make a file")
    term.expect(r"\[y\] allow")

    term.ctrl_c()

    term.expect("canceled")
    assert term.wait() == 130
    assert not (workspace / "hello.txt").exists()


def test_yolo_on_a_terminal_asks_nothing(terminal, write_script, workspace: Path):
    term = terminal("chat", "--yolo", "--script", write_script(WRITE_THEN_DONE), "make a file")

    term.expect("Finished the file task.")
    assert term.wait() == 0
    assert "Permission needed" not in term.output
    assert (workspace / "hello.txt").read_text() == "hi\n"


def test_the_screen_shows_each_block_once_in_order(terminal, write_script):
    """Played on a terminal emulator: redraws leave no stale spinner, no half-erased block."""
    script = write_script([
        {"step": 0, "events": [{"reasoning": "The user wants a file."},
                               {"text": "I will **create** it.\n", "chunkSize": 3, "delayMs": 10},
                               {"toolCall": {"name": "write", "input": {"file_path": "hello.txt",
                                                                        "content": "hi\nthere\n"}}}]},
        {"step": 1, "events": [{"text": "## Done\n\n- made `hello.txt`\n\n```python\nprint('hi')\n```\n",
                                "chunkSize": 4, "delayMs": 10},
                               {"usage": {"inputTokens": 120, "outputTokens": 34}}]},
    ])
    term = terminal("chat", "--script", script, "make a file")
    term.expect(r"\[y\] allow")
    term.send("a")
    assert term.wait() == 0

    seen = [line for line in term.screen() if line]
    expected = ["The user wants a file.", "I will create it.", "Permission needed: write", "→ allow_session",
                "✓ write  hello.txt  allowed for this session", "+hi", "+there", "Done", "• made hello.txt",
                "print('hi')", "── end_turn · 120 in · 34 out"]
    positions = [next(i for i, line in enumerate(seen) if want in line) for want in expected]
    assert positions == sorted(positions), "\n".join(seen)
    assert not any("Thinking" in line or "waiting for permission" in line for line in seen), "\n".join(seen)


def test_an_answer_taller_than_the_screen_scrolls_without_repeats(terminal, write_script):
    paragraphs = [f"Paragraph {n} of a long answer." for n in range(40)]
    script = write_script([{"events": [{"text": "\n\n".join(paragraphs), "chunkSize": 9, "delayMs": 2}]}])
    term = terminal("chat", "--script", script, "a long answer", rows=15)

    assert term.wait() == 0

    lines = term.screen(with_scrollback=True)
    shown = [line for line in lines if line.startswith("Paragraph ")]
    assert shown == paragraphs, "\n".join(lines)


def test_questions_go_to_the_terminal_when_stdout_is_not_one(terminal, write_script, workspace: Path, tmp_path: Path):
    out = tmp_path / "out.ndjson"
    script = write_script(WRITE_THEN_DONE)
    term = terminal("chat", "--json", "--script", script, "make a file", stdout_path=str(out))
    term.expect(r"Permission needed: write")
    term.send("y")

    assert term.wait() == 0
    notes = [json.loads(line) for line in out.read_text().splitlines()]  # only NDJSON on stdout
    assert [n["decision"] for n in notes if n["type"] == "permission_resolved"] == ["allow"]
    assert (workspace / "hello.txt").exists()


def test_questions_stay_out_of_a_pipe_of_the_terminal_view(terminal, write_script, tmp_path: Path):
    out = tmp_path / "out.txt"
    term = terminal("chat", "--script", write_script(WRITE_THEN_DONE), "make a file", stdout_path=str(out))
    term.expect(r"Permission needed: write")
    term.send("y")

    assert term.wait() == 0
    text = out.read_text()
    assert "Finished the file task." in text and "end_turn" in text
    assert "Permission needed" not in text and "[y] allow" not in text


def test_changes_rewind_and_unrewind_in_the_loop(terminal, write_script, workspace: Path):
    script = write_script([{"when": "make", **step} for step in WRITE_THEN_DONE]
                          + [{"events": [{"text": "Just talking."}]}])
    term = terminal("chat", "--yolo", "--script", script)
    term.expect("❯")
    term.send("make the file\r")
    term.expect("Finished the file task.")
    term.expect("❯")
    term.send("/changes\r")
    term.expect(r"A hello\.txt  \+1 -0")
    term.expect("❯")
    term.send("/changes hello.txt\r")
    term.expect(r"@@ -0,0 \+1 @@\n\+hi")
    term.expect("❯")
    term.send("/rewind\r")
    term.expect("1  make the file")
    term.expect("❯")
    term.send("/rewind 1\r")
    term.expect("deleted hello.txt")
    term.expect("messages hidden")
    term.expect("❯")
    assert not (workspace / "hello.txt").exists()
    term.send("/unrewind\r")
    term.expect("recreated hello.txt")
    term.expect("rewind undone")
    term.expect("❯")
    assert (workspace / "hello.txt").read_text() == "hi\n"
    term.send("/unqueue\r")
    term.expect("nothing is queued")
    term.expect("❯")
    term.send("\x04")
    assert term.wait() == 0


def test_add_sends_a_file_and_lines_with_the_next_prompt_and_the_transcript_shows_them(terminal, write_script,
                                                                                       run_cli, workspace: Path):
    (workspace / "app.py").write_text("a = 1\nb = 2\nc = 3\n")
    term = terminal("chat", "--script", write_script([{"events": [{"text": "Read them."}]}]))
    term.expect("❯")
    term.send("/add README.md\r")
    term.expect(r"with the next prompt: README\.md")
    term.send("/add app.py:2-3\r")
    term.expect(r"with the next prompt: README\.md, app\.py:2-3")
    term.send("/add nope.py\r")
    term.expect(r"/add: nope\.py is not a file")
    term.send("look\r")
    term.expect("Read them.")
    term.expect("end_turn")
    term.expect("❯")
    term.send("/add\r")
    term.expect("with the next prompt: nothing")  # sent with the prompt, then forgotten
    term.expect("❯")  # before the prompt is back the terminal is in cooked mode: it would eat the Ctrl-D
    term.send("\x04")
    assert term.wait() == 0

    (user, *_rest) = stored_messages(run_cli)
    assert [(p["type"], p.get("kind"), p.get("text")) for p in user["parts"]] == [
        ("text", None, "look"), ("context", "file", "# demo\n"), ("context", "selection", "b = 2\nc = 3\n")]
    shown = run_cli("sessions", "show").stdout
    assert "[file README.md]" in shown and "[selection app.py:2-3]" in shown
