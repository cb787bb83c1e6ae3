"""`crush-ls chat` / `sessions` as a script runs them: subprocess, pipes, --json, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from .conftest import CLI, notifications

HELLO = [{"events": [{"text": "Hello from the script", "chunkSize": 5},
                     {"usage": {"inputTokens": 7, "outputTokens": 3}}]}]


def run_notes(notes: list[dict], run_id: str) -> list[dict]:
    return [note for note in notes if note.get("runId") == run_id]


def test_json_prints_each_notification_of_the_run_once_in_order(run_cli, write_script):
    result = run_cli("chat", "--json", "--script", write_script(HELLO), "say hello")

    assert result.returncode == 0, result.stderr
    notes = notifications(result.stdout)  # every stdout line is JSON, or this raises
    seqs = [note["seq"] for note in notes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    run_id = notes[0]["runId"]
    run = run_notes(notes, run_id)
    types = [note["type"] for note in run]
    assert types.count("run_complete") == 1 and types[-1] == "run_complete"
    assert types.index("run_started") < types.index("text_delta") < types.index("message_finished")
    assert "".join(n["text"] for n in run if n["type"] == "text_delta") == "Hello from the script"
    complete = run[-1]
    assert complete["finishReason"] == "end_turn"
    assert complete["text"] == "Hello from the script"
    assert complete["usage"]["inputTokens"] == 7 and complete["usage"]["outputTokens"] == 3


def test_a_failed_run_exits_1_and_ends_with_its_error(run_cli, write_script):
    script = write_script([{"events": [{"text": "partial "}, {"error": "the model fell over"}]}])

    result = run_cli("chat", "--json", "--script", script, "fail please")

    assert result.returncode == 1
    run = [note for note in notifications(result.stdout) if note.get("runId")]
    types = [note["type"] for note in run]
    assert types[-1] == "run_complete" and "agent_error" in types
    assert run[-1]["finishReason"] == "error"


def test_terminal_output_for_a_pipe_shows_answer_and_finish_line(run_cli, write_script):
    script = write_script([{"events": [{"text": "# Title\n\nSome **bold** words."},
                                       {"usage": {"inputTokens": 12, "outputTokens": 5}}]}])

    result = run_cli("chat", "--script", script, "render markdown")

    assert result.returncode == 0, result.stderr
    assert "Some bold words." in result.stdout  # markdown rendered, not raw
    assert "**" not in result.stdout
    assert "end_turn · 12 in · 5 out" in result.stdout


def test_max_tokens_is_a_distinct_nonzero_exit(run_cli, write_script):
    script = write_script([{"events": [{"text": "cut"}, {"finish": "max_tokens"}]}])

    result = run_cli("chat", "--script", script, "long answer")

    assert result.returncode == 3
    assert "max_tokens" in result.stdout


def test_server_error_is_printed_and_exits_nonzero(run_cli):
    result = run_cli("chat", "--model", "echo", "--session", "no-such-session", "hello")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "session" in result.stderr.lower()


def test_prompt_can_come_on_standard_input(run_cli, write_script):
    script = write_script([{"when": "from stdin", "events": [{"text": "read your pipe"}]}])

    result = run_cli("chat", "--json", "--script", script, input="a prompt from stdin\n")

    assert result.returncode == 0, result.stderr
    (complete,) = [n for n in notifications(result.stdout) if n["type"] == "run_complete"]
    assert complete["text"] == "read your pipe"


def test_no_prompt_without_a_terminal_is_a_usage_error(run_cli):
    result = run_cli("chat", "--json", "--model", "echo", input="")

    assert result.returncode == 2
    assert result.stdout == ""


WRITE_THEN_DONE = [
    {"step": 0, "events": [{"toolCall": {"name": "write", "input": {"file_path": "hello.txt", "content": "hi\n"}}}]},
    {"step": 1, "events": [{"text": "The file is written."}]},
]


def test_yolo_allows_tool_calls_and_shows_the_diff(run_cli, write_script, workspace: Path):
    result = run_cli("chat", "--yolo", "--script", write_script(WRITE_THEN_DONE), "make a file")

    assert result.returncode == 0, result.stderr
    assert (workspace / "hello.txt").read_text() == "hi\n"
    assert "✓ write  hello.txt" in result.stdout
    assert "+hi" in result.stdout  # the unified diff of the write
    assert "end_turn" in result.stdout
    transcript = run_cli("sessions", "show")  # the newest session, with each tool call's stored result
    assert transcript.returncode == 0, transcript.stderr
    assert "✓ write  hello.txt" in transcript.stdout and "+hi" in transcript.stdout


def test_without_a_terminal_or_yolo_tool_calls_needing_permission_are_denied(run_cli, write_script, workspace):
    result = run_cli("chat", "--json", "--script", write_script(WRITE_THEN_DONE), "make a file")

    assert result.returncode == 0, result.stderr
    assert not (workspace / "hello.txt").exists()
    resolved = [n for n in notifications(result.stdout) if n["type"] == "permission_resolved"]
    assert [n["decision"] for n in resolved] == ["deny"]


def test_continue_and_sessions_show_the_same_conversation(run_cli, write_script):
    script = write_script([{"when": "first", "events": [{"text": "answer one"}]},
                           {"when": "second", "events": [{"text": "answer two"}]}])
    assert run_cli("chat", "--script", script, "first question").returncode == 0
    assert run_cli("chat", "-c", "--script", script, "second question").returncode == 0

    listed = run_cli("sessions", "--json")
    assert listed.returncode == 0, listed.stderr
    (session,) = json.loads(listed.stdout)["sessions"]
    shown = json.loads(run_cli("sessions", "show", session["id"], "--json").stdout)
    users = [m["parts"][0]["text"] for m in shown["messages"] if m["role"] == "user"]
    assert users == ["first question", "second question"]

    transcript = run_cli("sessions", "show", session["id"])
    assert transcript.returncode == 0
    for text in ("first question", "answer one", "second question", "answer two"):
        assert text in transcript.stdout


def test_a_chat_without_continue_starts_a_new_session(run_cli):
    assert run_cli("chat", "--model", "echo", "one").returncode == 0
    assert run_cli("chat", "--model", "echo", "two").returncode == 0

    table = run_cli("sessions").stdout
    listed = json.loads(run_cli("sessions", "--json").stdout)["sessions"]
    assert len(listed) == 2 and listed[0]["createdAt"] >= listed[1]["createdAt"]  # newest first
    assert all(s["id"] in table for s in listed)


def test_a_model_that_cannot_run_is_reported_in_one_line(run_cli, chat_env):
    chat_env.pop("OPENAI_API_KEY", None)

    result = run_cli("chat", "--json", "--model", "openai:gpt-4o-mini", "hello")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "OPENAI_API_KEY" in result.stderr.strip().splitlines()[-1]


def test_json_reader_going_away_stops_the_client_cleanly(workspace, chat_env):
    """`crush-ls chat --json ... | head -1`: no traceback, no hang, the server is shut down."""
    options = json.dumps({"model": {"provider": "echo", "delayMs": 50}})
    proc = subprocess.Popen([*CLI, "chat", "--json", "--init-options", options, "one two three four five six"],
                            cwd=workspace, env=chat_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["type"] == "run_started"
    proc.stdout.close()

    assert proc.wait(timeout=30) == 130
    assert "Traceback" not in proc.stderr.read()
    proc.stderr.close()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_server_that_dies_mid_turn_is_reported_not_waited_for(workspace, chat_env, write_script):
    script = write_script([{"events": [{"text": "Working on it."}, {"sleepMs": 60000}]}])
    proc = subprocess.Popen([*CLI, "chat", "--json", "--script", script, "slow"], cwd=workspace, env=chat_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while json.loads(proc.stdout.readline())["type"] != "text_delta":
        pass
    (server_pid,) = children_of(proc.pid)

    os.kill(server_pid, signal.SIGKILL)

    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "crush-ls exited" in stderr
