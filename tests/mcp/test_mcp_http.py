"""Streamable-HTTP servers on 127.0.0.1, written with the SDK's server side (servers/http_server.py):
results with images and resources, a long result, an isError result, a server that answers
too slowly, a run cancelled during a call, and a server that fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import scripted
from tests.e2e.runs import assert_runs_end_once
from tests.mcp.helpers import HERE, call_then_say, options, run, servers, tool_results, wait_state


def serve(*args: str) -> Iterator[str]:
    """The base URL of a running http_server.py."""
    proc = subprocess.Popen([sys.executable, str(HERE / "servers" / "http_server.py"), *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    yield from serve()


@pytest.fixture(scope="module")
def sse_web() -> Iterator[str]:
    yield from serve("sse")


def http(url: str, **extra) -> dict:
    return {"web": {"type": "http", "url": url, **extra}}


async def test_a_call_over_http_with_headers(start, web):
    client = await start(options(http(f"{web}/mcp", headers={"X-Token": "t"}),
                                 call_then_say("mcp_web_echo", {"text": "over http"})))
    state = await wait_state(client, "web", "connected", "failed")
    assert state["state"] == "connected" and state["type"] == "http", state
    assert {"mcp_web_echo", "mcp_web_slow", "mcp_web_boom"} <= {t["name"] for t in state["tools"]}
    run_id, complete = await run(client)
    (result,) = tool_results(client, run_id)
    assert result["content"] == "over http" and result["isError"] is False
    assert complete["text"] == "done"


async def test_images_and_resources_are_kept_as_parts(start, web):
    client = await start(options(http(f"{web}/mcp"), call_then_say("mcp_web_picture", {})))
    await wait_state(client, "web", "connected")
    run_id, _complete = await run(client)
    (result,) = tool_results(client, run_id)
    assert result["content"] == "a picture:\n[image image/png]\nresource text"
    image, resource = result["parts"]
    assert image["type"] == "binary" and image["mimeType"] == "image/png" and image["data"].startswith("iVBOR")
    assert resource == {"type": "resource", "uri": "file:///notes.txt", "mimeType": "text/plain",
                        "text": "resource text"}


async def test_a_long_result_is_cut_in_the_middle(start, web):
    client = await start(options(http(f"{web}/mcp"), call_then_say("mcp_web_big", {"lines": 5000})))
    await wait_state(client, "web", "connected")
    run_id, _complete = await run(client)
    (result,) = tool_results(client, run_id)
    content = result["content"]
    assert len(content) < 51_000 and "lines truncated] ..." in content
    assert content.startswith("line 000000") and content.rstrip().endswith("x" * 40)
    assert "line 004999" in content


async def test_is_error_is_a_failed_call(start, web):
    client = await start(options(http(f"{web}/mcp"), call_then_say("mcp_web_boom", {})))
    await wait_state(client, "web", "connected")
    run_id, complete = await run(client)
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True and "always fails" in result["content"]
    statuses = [n["toolCall"]["status"] for n in client.of_run(run_id) if n["type"] == "tool_call"]
    assert statuses[-1] == "failed"
    assert complete["text"] == "done"


async def test_a_call_that_hangs_ends_at_the_timeout(start, web):
    client = await start(options(http(f"{web}/mcp", timeout=1), call_then_say("mcp_web_slow", {"seconds": 30})))
    await wait_state(client, "web", "connected")
    run_id, complete = await run(client)
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True and "did not answer within 1s" in result["content"], result
    assert complete["text"] == "done"
    assert (await servers(client))["web"]["state"] == "connected"  # the server is still there for the next call
    assert_runs_end_once(client.notes)


async def test_cancelling_the_run_cancels_the_call(start, web):
    model = scripted(
        {"when": "slow", "step": 0,
         "events": [{"toolCall": {"name": "mcp_web_slow", "input": {"seconds": 30, "tag": "run-cancel"}}}]},
        {"when": "check", "step": 0,
         "events": [{"toolCall": {"name": "mcp_web_cancelled", "input": {"tag": "run-cancel"}}}]},
        {"step": 1, "events": [{"text": "after"}]},
    )
    client = await start(options(http(f"{web}/mcp", timeout=60), model))
    await wait_state(client, "web", "connected")
    session = await client.new_session()
    run_id = (await client.send(session, "slow"))["runId"]
    await client.wait_for(lambda n: n.get("runId") == run_id and n["type"] == "tool_call"
                          and n["toolCall"]["status"] == "running")
    assert (await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session}))["canceled"]
    complete = await client.completed(run_id, timeout=5)
    assert complete["finishReason"] == "canceled"
    run_id, complete = await run(client, "check", session)  # the connection still serves
    (result,) = tool_results(client, run_id)
    assert result["content"] == "yes"  # the server was told (notifications/cancelled) and stopped the call
    assert_runs_end_once(client.notes)


async def test_a_server_that_fails_is_reported(start, web):
    client = await start(options({"broken": {"type": "http", "url": f"{web}/broken"},
                                  "nobody": {"type": "http", "url": "http://127.0.0.1:9/mcp", "timeout": 2}},
                                 scripted({"events": [{"text": "fine"}]})))
    broken = await wait_state(client, "broken", "failed", "connected")
    assert broken["state"] == "failed" and "500" in broken["error"], broken
    nobody = await wait_state(client, "nobody", "failed", "connected")
    assert nobody["state"] == "failed" and nobody["error"], nobody
    _run_id, complete = await run(client)
    assert complete["text"] == "fine"


async def test_a_call_over_sse(start, sse_web):
    client = await start(options({"web": {"type": "sse", "url": f"{sse_web}/sse"}},
                                 call_then_say("mcp_web_echo", {"text": "over sse"})))
    state = await wait_state(client, "web", "connected", "failed")
    assert state["state"] == "connected" and state["type"] == "sse", state
    run_id, _complete = await run(client)
    (result,) = tool_results(client, run_id)
    assert result["content"] == "over sse" and result["isError"] is False
