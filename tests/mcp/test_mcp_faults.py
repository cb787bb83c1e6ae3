"""Faults of stdio servers: a crash in the middle of a call, no answer to initialize,
garbage on stdout, an exit at start-up; and no process left behind.

Each run ends with one run_complete, the workspace keeps working, and the
server's state says why.
"""

from __future__ import annotations

import asyncio
import time

from lsprotocol import types

from tests.conftest import scripted
from tests.e2e.runs import assert_runs_end_once
from tests.mcp.helpers import (
    alive,
    call_then_say,
    children,
    options,
    run,
    script,
    server_of,
    servers,
    stdio,
    tool_results,
    wait_state,
)
from tests.raw import RawServer

HELLO = {"events": [{"text": "still working"}]}


async def test_a_server_that_crashes_mid_call_fails_the_call_and_is_restarted(start):
    model = scripted(
        {"when": "crash", "step": 0, "events": [{"toolCall": {"name": "mcp_crashy_crash", "input": {}}}]},
        {"when": "echo", "step": 0, "events": [{"toolCall": {"name": "mcp_crashy_echo", "input": {"text": "back"}}}]},
        {"step": 1, "events": [{"text": "after"}]},
    )
    client = await start(options({"crashy": script("crashy.py")}, model))
    await wait_state(client, "crashy", "connected")
    run_id, complete = await run(client, "crash")
    assert complete["finishReason"] == "end_turn" and complete["text"] == "after"
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True and "closed the connection during the call" in result["content"], result
    restarting = await wait_state(client, "crashy", "starting")
    assert "exited" in restarting["error"] and "crashing on purpose" in restarting["error"], restarting
    assert "restarting (1 of 3)" in restarting["error"]
    again = await wait_for_restarted(client)
    assert again["restarts"] == 1 and again["error"] is None
    run_id, complete = await run(client, "echo")
    (result,) = tool_results(client, run_id)
    assert result["isError"] is False and result["content"] == "back"
    assert_runs_end_once(client.notes)


async def wait_for_restarted(client):
    return server_of(await client.wait_for(lambda n: n["type"] == "mcp_updated" and any(
        s["name"] == "crashy" and s["state"] == "connected" and s["restarts"] == 1 for s in n["servers"]),
        timeout=30), "crashy")


async def test_a_server_that_never_answers_initialize_fails_at_its_timeout(start):
    client = await start(options({"mute": script("mute.py", timeout=1)}, scripted(HELLO)))
    failed = await wait_state(client, "mute", "failed", "connected")
    assert failed["state"] == "failed" and "no answer to initialize within 1s" in failed["error"], failed
    assert "mute server started" in failed["error"]  # its stderr
    run_id, complete = await run(client)
    assert complete["text"] == "still working"
    assert children(client._server.pid) == set()  # killed although it ignores SIGTERM and end of input


async def test_a_server_that_prints_garbage_fails_and_says_so(start):
    client = await start(options({"noisy": script("garbage.py", timeout=1)}, scripted(HELLO)))
    failed = await wait_state(client, "noisy", "failed", "connected")
    assert failed["state"] == "failed" and "not JSON-RPC on stdout" in failed["error"], failed
    _run_id, complete = await run(client)
    assert complete["text"] == "still working"


async def test_a_server_that_exits_at_start_fails_with_its_stderr(start):
    client = await start(options({"broken": script("exits.py"), "missing": {"command": "/nonexistent/server"}},
                                 scripted(HELLO)))
    failed = await wait_state(client, "broken", "failed", "connected")
    assert failed["state"] == "failed" and "missing API token" in failed["error"], failed
    missing = await wait_state(client, "missing", "failed", "connected")
    assert "not found" in missing["error"], missing
    assert (await servers(client))["broken"]["restarts"] == 0  # never connected: not restarted


async def test_a_call_to_a_server_that_is_not_connected_fails(start):
    model = call_then_say("mcp_mute_anything", {})
    client = await start(options({"mute": script("mute.py", timeout=30)}, model))
    run_id, complete = await run(client)  # the server is still starting: the model has no such tool
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True and "Unknown tool" in result["content"]
    assert complete["text"] == "done"


async def test_tools_list_changed_refreshes_the_tools(start):
    client = await start(options({"changing": script("changing.py")},
                                 call_then_say("mcp_changing_grow", {})))
    first = await wait_state(client, "changing", "connected")
    assert [t["name"] for t in first["tools"]] == ["mcp_changing_grow"]
    await run(client)
    grown = await client.wait_for(lambda n: n["type"] == "mcp_updated" and any(
        len(s["tools"]) == 2 for s in n["servers"]))
    assert sorted(t["name"] for t in grown["servers"][0]["tools"]) == ["mcp_changing_extra", "mcp_changing_grow"]


# ---------------------------------------------------------------------- no orphans

TWO = {"time": stdio("-m", "mcp_server_time"), "mute": script("mute.py", timeout=30)}


async def started_servers(client) -> set[int]:
    await wait_state(client, "time", "connected")
    pids = children(client._server.pid)
    assert len(pids) == 2, pids  # the time server and the mute one (still starting)
    return pids


async def wait_gone(pids: set[int], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if alive(p)]
        await asyncio.sleep(0.05)


async def test_closing_the_workspace_ends_its_servers(start, workspace):
    client = await start(options(TWO))
    pids = await started_servers(client)
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[], removed=[
            types.WorkspaceFolder(uri=client.ws_uri, name=workspace.name)])))
    await wait_gone(pids)
    assert alive(client._server.pid)


async def test_shutdown_ends_the_servers(start):
    client = await start(options(TWO))
    pids = await started_servers(client)
    await client.shutdown_async(None)
    assert not any(alive(p) for p in pids)  # gone before the shutdown answer
    client.exit(None)
    assert await asyncio.wait_for(client._server.wait(), 5) == 0


def test_end_of_input_ends_the_servers_and_the_process_within_bounds(workspace):
    raw = RawServer(workspace, options(TWO))
    try:
        raw.read_until(lambda m: m.get("method") == "agent/notification" and m["params"]["type"] == "mcp_updated"
                       and any(s["name"] == "time" and s["state"] == "connected" for s in m["params"]["servers"]),
                       timeout=30)
        pids = children(raw.proc.pid)
        assert len(pids) == 2, pids
        started = time.monotonic()
        raw.proc.stdin.close()
        assert raw.proc.wait(timeout=3) == 0
        assert time.monotonic() - started < 2
        assert not any(alive(p) for p in pids)
    finally:
        raw.close()



def test_a_killed_server_takes_its_mcp_servers_along(workspace):
    """SIGKILL: nothing of crush-ls runs, yet even the server that ignores SIGTERM and end of input dies."""
    raw = RawServer(workspace, options(TWO))
    try:
        raw.read_until(lambda m: m.get("method") == "agent/notification" and m["params"]["type"] == "mcp_updated"
                       and any(s["name"] == "time" and s["state"] == "connected" for s in m["params"]["servers"]),
                       timeout=30)
        pids = children(raw.proc.pid)
        assert len(pids) == 2, pids
        raw.proc.kill()
        raw.proc.wait(timeout=5)
        asyncio.run(wait_gone(pids))
    finally:
        raw.close()
