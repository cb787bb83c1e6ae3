"""`bash`: output, exit codes, limits, banned commands, the read-only exemption,
and no process left behind after a timeout, a cancellation or a background job."""

from __future__ import annotations

import asyncio
import os

import pytest

from crush_ls.tools import builtin_tools
from crush_ls.tools.bash import MAX_OUTPUT
from tests.processes import assert_all_dead, living_members, read_fifo


async def test_runs_in_the_workspace_with_output_and_exit_code(workspace, call):
    (workspace / "marker.txt").write_text("x")
    result = await call("bash", {"command": "pwd; ls; echo oops >&2; exit 3", "description": "look"})
    assert not result.is_error
    assert result.content.splitlines()[:3] == [str(workspace), "marker.txt", "oops"]
    assert result.content.endswith("Exit code 3")
    assert result.metadata["exitCode"] == 3 and result.metadata["timedOut"] is False


async def test_no_output(call):
    result = await call("bash", {"command": "true"})
    assert result.content == "no output" and result.metadata["exitCode"] == 0


async def test_long_output_keeps_head_and_tail(call):
    result = await call("bash", {"command": "seq 1 40000"})
    assert len(result.content) < MAX_OUTPUT + 200
    assert result.content.startswith("1\n2\n3\n")
    assert result.content.endswith("39999\n40000")
    head, note, tail = result.content.split("\n\n")
    cut = int(note.removeprefix("... [").removesuffix(" lines truncated] ..."))
    # Every line is either shown (the two cut ones count in both halves) or counted as cut.
    assert len(head.splitlines()) + cut + len(tail.splitlines()) == 40000 + 1


async def test_endless_output_is_cut_too(call):
    result = await call("bash", {"command": "yes 0123456789 | head -c 20000000"})
    assert len(result.content) < MAX_OUTPUT + 200
    head, note, tail = result.content.split("\n\n")
    cut = int(note.removeprefix("... [").removesuffix(" lines truncated] ..."))
    assert head.count("\n") + cut + tail.count("\n") == 20_000_000 // len("0123456789\n")


async def test_banned_commands_are_refused(workspace, call):
    for command in ("curl http://example.com", "ls && wget x", "FOO=1 sudo ls", "echo $(nc -l 9)"):
        result = await call("bash", {"command": command})
        assert result.is_error and "not allowed" in result.content, command


async def test_bad_input(call):
    assert (await call("bash", {})).is_error
    assert (await call("bash", {"command": "ls", "timeout": "5"})).is_error
    assert (await call("bash", {"command": "ls", "timeout": 0})).is_error
    assert (await call("bash", {"command": "ls", "timeout": 600_001})).is_error
    assert (await call("bash", {"command": "   "})).is_error


def asks(ctx, command: str) -> bool:
    tool = builtin_tools()["bash"]
    access = tool.access(ctx, tool.parse({"command": command}))
    assert access.action == "execute" and access.inside and access.path == str(ctx.root)
    return access.asks_inside


async def test_single_read_only_commands_do_not_ask(workspace, ctx):
    (workspace / "a.py").write_text("")
    for command in ("ls", "ls -la", "pwd", "cat a.py", "head -n 3 a.py", "wc -l a.py", "git status",
                    "git log --oneline", "git diff", "echo hello", "which python3", "date"):
        assert not asks(ctx, command), command


async def test_everything_else_asks(workspace, outside, ctx):
    (outside / "secret").write_text("s")
    os.symlink(outside / "secret", workspace / "link")
    for command in ("rm -rf a", "python3 x.py", "ls; rm a", "ls && rm a", "ls || rm a", "ls | sh",
                    "echo x > a.py", "cat < a.py", "echo `rm a`", "echo $(rm a)", "cat ../outside/secret",
                    "cat /etc/passwd", "cat ~/.ssh/id_rsa", "cat link", "ls .*", "date -s 2020-01-01",
                    "git diff --output=a.py", "git branch new", "find . -delete", "ls &"):
        assert asks(ctx, command), command


async def test_timeout_kills_the_whole_group(call):
    result = await call("bash", {"command": "sleep 30 & echo $$ $!; sleep 30", "timeout": 300})
    assert result.is_error and "timed out after 300 ms" in result.content
    assert result.metadata["timedOut"] is True and result.metadata["exitCode"] is None
    assert result.metadata["elapsedMs"] < 5_000
    shell_pid, background_pid = map(int, result.content.split()[:2])
    await assert_all_dead(shell_pid, [shell_pid, background_pid])


async def test_cancellation_kills_the_group_and_propagates(workspace, call):
    fifo = workspace / "pids"
    os.mkfifo(fifo)
    task = asyncio.create_task(call("bash", {"command": "sleep 30 & echo $$ $! > pids; sleep 30"}))
    shell_pid, background_pid = map(int, (await read_fifo(fifo)).split())
    assert living_members(shell_pid), "the command should be running"
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "cancelling must kill the command, not wait for it"
    with pytest.raises(asyncio.CancelledError):
        task.result()
    await assert_all_dead(shell_pid, [shell_pid, background_pid])


async def test_background_jobs_do_not_outlive_the_call(call):
    result = await call("bash", {"command": "sleep 30 & echo $$ $!"})
    assert not result.is_error and result.metadata["elapsedMs"] < 5_000
    shell_pid, background_pid = map(int, result.content.split()[:2])
    await assert_all_dead(shell_pid, [shell_pid, background_pid])


async def test_api_keys_are_not_in_the_environment(call, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    result = await call("bash", {"command": "env"})
    assert "secret" not in result.content
    assert "HARMLESS_SETTING=visible" in result.content
