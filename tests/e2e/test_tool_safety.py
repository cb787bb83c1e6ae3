"""What a hostile model must not be able to do through the tools, through the
real protocol (issue 15): freeze the server with a search, read outside the
workspace without a yes, turn a write into command execution, race a
symlink, or leave processes behind a killed server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import server_env
from tests.e2e.test_tools_e2e import start_sleeper, steps
from tests.tools.test_tool_bash import wait_dead

ENGINES = ["python", "ripgrep"]


def children(pid: int, marker: str) -> list[int]:
    """Processes whose parent is `pid` and whose command line holds `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and marker in cmdline:
            found.append(int(entry))
    return found


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
