"""What a hostile model must not be able to do through the tools, through the
real protocol (issue 15): freeze the server with a search, read outside the
workspace without a yes, turn a write into command execution, race a
symlink, or leave processes behind a killed server."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.conftest import server_env
from tests.e2e.escapes import OUTSIDE_READS, Swapper, commit_all, git
from tests.e2e.runs import one_call_per_prompt, racing_runs, run_each, start_sleeper, steps
from tests.processes import children, wait_dead

ENGINES = ["python", "ripgrep"]


async def status(client) -> dict:
    return await client.call("agent/status", {"workspace": client.ws_uri})


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_catastrophic_grep_never_holds_the_server(start, workspace, engine):
    """`(a|aa)*c` over 60 `a`s backtracks for ages in Python's re: the server answers meanwhile and a cancel ends it."""
    (workspace / "a.txt").write_text("a" * 60 + "\n")
    model = steps({"name": "grep", "input": {"pattern": "(a|aa)*c"}})
    client = await start({"model": model, "permissions": {"mode": "allow"}},
                         env=server_env(CRUSH_LS_SEARCH=engine))
    session = await client.new_session()
    run_id = (await client.send(session, "search"))["runId"]
    if engine == "ripgrep":  # no backtracking: the search is over at once
        complete = await client.completed(run_id)
        result = next(n for n in client.of_run(run_id) if n["type"] == "tool_result")
        assert result["content"] == "No matches found" and complete["finishReason"] == "end_turn"
        return
    await client.wait_for(lambda n: n["type"] == "tool_call" and n["toolCall"]["status"] == "running")
    # Answered while the regex runs (the server used to stop reading altogether).
    assert (await asyncio.wait_for(status(client), 5))["busy"] is True
    workers = children(client._server.pid, "crush_ls.tools.worker")
    assert len(workers) == 1
    await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})
    assert (await client.completed(run_id, timeout=5))["finishReason"] == "canceled"
    assert await wait_dead(workers[0], timeout=5)


async def test_repeated_globstars_answer_at_once(start, workspace):
    """`**/**/.../x` nested thirty quantifiers: matching `d/d/.../f` took forever with the event loop held."""
    deep = workspace.joinpath(*["d"] * 20)
    deep.mkdir(parents=True)
    (deep / "f").write_text("")
    model = steps({"name": "glob", "input": {"pattern": "**/" * 30 + "x"}})
    client = await start({"model": model, "permissions": {"mode": "allow"}})
    session = await client.new_session()
    run_id = (await client.send(session, "find"))["runId"]
    complete = await client.completed(run_id)
    assert complete["finishReason"] == "end_turn"
    result = next(n for n in client.of_run(run_id) if n["type"] == "tool_result")
    assert result["content"] == "No files found"
    assert (await status(client))["busy"] is False


async def test_bash_processes_die_with_a_killed_server(start, workspace):
    """SIGKILL of the server (no chance to clean up): the shell and its background job die with it."""
    client, _session, _run_id, pids = await start_sleeper(start, workspace)
    client._server.kill()
    await client._server.wait()
    for pid in pids:
        assert await wait_dead(pid, timeout=5), f"process {pid} outlived the server"


# ---------------------------------------------------------------- bash that asks, git that runs nothing


async def test_read_only_commands_ask_before_reading_outside(start, tmp_path):
    """Mode ask, the workspace a folder of a larger repository: nothing outside is read or printed without a yes."""
    repo, ws = tmp_path / "repo", tmp_path / "repo" / "ws"
    (repo / "outside").mkdir(parents=True)
    (repo / "outside" / "secret.txt").write_text("TOP SECRET\n")
    ws.mkdir()
    (ws / "mine.txt").write_text("mine\n")
    (ws / "list").write_bytes(b"../outside/secret.txt\0")
    os.symlink(repo / "outside", ws / "door")
    commit_all(repo)
    calls = [{"name": "bash", "input": {"command": c}} for c in [*OUTSIDE_READS, "cat mine.txt"]]
    client = await start({"model": one_call_per_prompt(calls), "permissions": {"mode": "ask"}},
                         folder=ws, permissions=True)
    client.permission_answer = {"decision": "deny"}
    results = await run_each(client, len(calls))
    asked = [r["permission"]["description"] for r in client.permission_requests]
    assert len(asked) == len(OUTSIDE_READS), asked
    assert asked == [f"Execute command: {c}" + asked[n][len(f"Execute command: {c}"):]
                     for n, c in enumerate(OUTSIDE_READS)]
    assert all("(" in a for a in asked), asked  # each says what it reaches
    assert not any("TOP SECRET" in r["content"] for r in results)
    assert all(r["content"].startswith("Permission denied") for r in results[:-1])
    assert results[-1]["content"] == "mine"  # a command that stays inside still runs without asking


RUNS_CODE = [".git/config", ".git/hooks/pre-commit", ".gitattributes", "sub/.gitattributes", "crush.json",
             ".vscode/tasks.json"]


async def test_writing_what_configures_execution_asks_every_time(start, workspace):
    """`write` allowed, yet a write to git's config (diff.external = a command) or hooks asks, and a no keeps it out."""
    (workspace / "f.txt").write_text("a\n")
    commit_all(workspace)
    config_before = (workspace / ".git" / "config").read_text()
    evil = "[diff]\n\texternal = sh -c 'touch PWNED'\n"
    calls = [{"name": "write", "input": {"file_path": p, "content": evil}} for p in RUNS_CODE]
    calls.append({"name": "write", "input": {"file_path": "plain.txt", "content": "fine"}})
    client = await start({"model": one_call_per_prompt(calls),
                          "permissions": {"mode": "ask", "allowedTools": ["write"]}}, permissions=True)
    client.permission_answer = {"decision": "allow_session"}
    # The first answer is yes for the session: the same file still asks the next time.
    await run_each(client, 1)
    client.permission_answer = {"decision": "deny"}
    results = await run_each(client, len(calls))
    asked = [r["permission"]["path"] for r in client.permission_requests]
    assert asked == [str(workspace / RUNS_CODE[0]), *(str(workspace / p) for p in RUNS_CODE)]
    assert all("Permission denied" in r["content"] for r in results[:-1])
    (workspace / ".git" / "config").write_text(config_before)  # what the session's first yes wrote
    assert not any((workspace / p).exists() for p in RUNS_CODE[1:])
    assert (workspace / "plain.txt").read_text() == "fine"  # allowed, not asked


GIT_COMMANDS = ["git diff", "git log -p", "git show", "git status", "git blame f.txt", "git diff --stat"]


async def test_safe_git_commands_run_no_configured_program(start, workspace):
    """Configured diff drivers, pagers, text conversion, fsmonitor and hooks do not run for a command nobody was asked about."""
    (workspace / "f.txt").write_text("a\n")
    commit_all(workspace)
    (workspace / "f.txt").write_text("b\n")
    marker = workspace.parent / "PWNED"
    evil = workspace.parent / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n")
    evil.chmod(0o755)
    for key in ("diff.external", "core.pager", "core.fsmonitor", "diff.conv.textconv", "gpg.program"):
        git(workspace, "config", key, str(evil))
    hook = workspace / ".git" / "hooks" / "post-index-change"
    hook.write_text(evil.read_text())
    hook.chmod(0o755)
    (workspace / ".gitattributes").write_text("*.txt diff=conv\n")
    calls = [{"name": "bash", "input": {"command": c}} for c in GIT_COMMANDS]
    client = await start({"model": one_call_per_prompt(calls), "permissions": {"mode": "ask"}}, permissions=True)
    client.permission_answer = {"decision": "deny"}
    results = await run_each(client, len(calls))
    assert client.permission_requests == []  # read-only: nobody was asked
    assert "+b" in results[0]["content"] and "f.txt" in results[3]["content"]
    assert not marker.exists()


# ---------------------------------------------------------------- time of check, time of use


async def test_a_symlink_swapped_during_the_decision_never_leads_a_view_out(start, workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    (workspace / "inside.txt").write_text("inside\n")
    model = steps(*[{"name": "view", "input": {"file_path": "link"}}] * 20)
    client = await start({"model": model, "permissions": {"mode": "ask"}}, permissions=True)
    client.permission_answer = {"decision": "deny"}
    with Swapper(workspace / "link", workspace / "inside.txt", secret):
        results = await racing_runs(client, 20, 30)
    shown = [r["content"] for r in results if not r["isError"]]
    assert shown, "no view ran"
    assert not any("TOP SECRET" in text for text in shown)
    assert all("inside" in text for text in shown)


async def test_a_symlink_swapped_during_the_decision_never_leads_a_write_out(start, workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    (workspace / "inside.txt").write_text("inside\n")
    model = steps(*[{"name": "write", "input": {"file_path": "link", "content": "pwned\n"}}] * 20)
    client = await start({"model": model, "permissions": {"mode": "ask", "allowedTools": ["write"]}},
                         permissions=True)
    client.permission_answer = {"decision": "deny"}
    with Swapper(workspace / "link", workspace / "inside.txt", secret):
        results = await racing_runs(client, 20, 40)
    assert any(not r["isError"] for r in results), "no write ran"
    assert secret.read_text() == "TOP SECRET\n"
