"""agent/cancel: what ends, what is stored, what is left alone (PROTOCOL section 2, agent/cancel)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import read_db, say, scripted
from tests.e2e.runs import assert_runs_end_once, barrier, finish_reason, roles, stored, text
from tests.raw import RawServer, run_complete_of

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
SLOW = say(ALPHABET * 4, chunk=1, delay_ms=30)  # about 3 s
BRIEF = say(ALPHABET * 2, chunk=1, delay_ms=20)  # about 1 s: long enough to queue behind
# "slow" prompts stream for seconds (they get cancelled), "brief" ones for a moment; others are echoed.
SLOW_OR_ECHO = scripted(dict(SLOW, when="slow"), dict(BRIEF, when="brief"), {"events": [{"echo": True}]})


async def cancel(client, session: str, run_id: str | None = None) -> int:
    params = {"workspace": client.ws_uri, "sessionId": session}
    if run_id is not None:
        params["runId"] = run_id
    return (await client.call("agent/cancel", params))["canceled"]


async def first_delta(client, run_id: str) -> None:
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == run_id)


async def test_cancel_mid_stream_keeps_the_streamed_text(start):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    run_id = (await client.send(session, "slow please"))["runId"]
    await first_delta(client, run_id)
    assert await cancel(client, session) == 1
    done = await client.completed(run_id, timeout=3)
    await barrier(client)
    assert done["finishReason"] == "canceled" and "error" not in done
    assert "agent_error" not in client.types_of(run_id)
    assert_runs_end_once(client.notes, [run_id])
    streamed = client.text_of(run_id)
    assert streamed and ALPHABET.startswith(streamed[:26]) and len(streamed) < len(ALPHABET) * 4
    assert done["text"] == streamed
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant"]
    assert text(messages[1]) == streamed
    assert finish_reason(messages[1]) == "canceled"
    assert messages[1]["id"] == done["messageId"]


def test_cancel_right_after_accept_stores_prompt_and_canceled_answer(workspace: Path):
    raw = RawServer(workspace, {"model": SLOW_OR_ECHO})
    try:
        session = raw.request("session/create", {"workspace": raw.uri})["result"]["id"]
        send = {"jsonrpc": "2.0", "id": "send", "method": "agent/sendMessage",
                "params": {"workspace": raw.uri, "sessionId": session, "prompt": "slow start", "runId": "r1"}}
        stop = {"jsonrpc": "2.0", "id": "stop", "method": "agent/cancel",
                "params": {"workspace": raw.uri, "sessionId": session}}
        raw.write_together(send, stop)  # the server reads both before the run starts
        done = raw.read_until(run_complete_of("r1"), timeout=5)["params"]
        replies = {m["id"]: m for m in raw.received if m.get("id") in ("send", "stop")}
        assert replies["send"]["result"]["accepted"] is True
        assert replies["stop"]["result"] == {"canceled": 1}
        assert done["finishReason"] == "canceled"
        of_run = [m for m in raw.received if m.get("method") == "agent/notification" and m["params"].get("runId") == "r1"]
        kinds = [m["params"]["type"] for m in of_run]
        # The response to sendMessage is on the wire before any notification of its run.
        assert raw.received.index(replies["send"]) < raw.received.index(of_run[0])
        assert "text_delta" not in kinds and "agent_error" not in kinds
        messages = raw.request("session/messages", {"workspace": raw.uri, "sessionId": session})["result"]["messages"]
    finally:
        raw.close()
    assert roles(messages) == ["user", "assistant"]
    assert text(messages[0]) == "slow start"
    assert finish_reason(messages[1]) == "canceled"


async def test_idle_cancel_is_a_noop(start):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    assert await cancel(client, session) == 0
    run_id = (await client.send(session, "fast one"))["runId"]
    done = await client.completed(run_id)
    assert done["finishReason"] == "end_turn" and done["text"] == "fast one"


async def test_cancel_ends_runs_accepted_before_it_not_after(start, workspace: Path):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    active = (await client.send(session, "slow active"))["runId"]
    queued = [(await client.send(session, f"queued {i}"))["runId"] for i in (1, 2)]
    await first_delta(client, active)
    assert await cancel(client, session) == 3
    after = (await client.send(session, "sent after the cancel"))["runId"]
    done = {run_id: await client.completed(run_id) for run_id in [active, *queued, after]}
    await barrier(client)
    assert [done[r]["finishReason"] for r in (active, *queued)] == ["canceled"] * 3
    assert done[after]["finishReason"] == "end_turn" and done[after]["text"] == "sent after the cancel"
    for run_id in queued:  # never started, nothing of theirs but queued and complete
        assert client.types_of(run_id) == ["run_queued", "run_complete"]
    assert_runs_end_once(client.notes)
    messages = read_db(workspace)["messages"]
    assert roles(messages) == ["user", "assistant", "user", "assistant"]
    assert [text(m) for m in messages[::2]] == ["slow active", "sent after the cancel"]
    assert [finish_reason(m) for m in messages[1::2]] == ["canceled", "end_turn"]


async def test_cancel_by_run_id_ends_only_that_queued_run(start):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    active = (await client.send(session, "brief active"))["runId"]
    first = (await client.send(session, "first queued"))["runId"]
    second = (await client.send(session, "second queued"))["runId"]
    assert await cancel(client, session, first) == 1
    assert (await client.completed(first))["finishReason"] == "canceled"
    assert client.types_of(first) == ["run_queued", "run_complete"]
    assert await cancel(client, session, first) == 0  # already ended
    assert (await client.completed(active))["finishReason"] == "end_turn"
    assert (await client.completed(second))["text"] == "second queued"
    messages = await stored(client, session)
    assert [text(m) for m in messages if m["role"] == "user"] == ["brief active", "second queued"]


async def test_cancel_withdraws_a_pending_permission_request(start, workspace: Path):
    view_outside = {"events": [{"toolCall": {"name": "view", "input": {"file_path": "/etc/hostname"}}}]}
    client = await start({"model": scripted(view_outside)}, permissions=True)
    never: asyncio.Future = asyncio.get_running_loop().create_future()
    handler_waiting = asyncio.Event()

    def answer_never(params):
        handler_waiting.set()
        return never

    client.permission_answer = answer_never
    session = await client.new_session()
    run_id = (await client.send(session, "read the hostname"))["runId"]
    asked = await client.wait_for(lambda n: n["type"] == "permission_requested")
    await asyncio.wait_for(handler_waiting.wait(), 5)  # the client is really waiting on the request
    tool_call_id = asked["permission"]["toolCallId"]
    assert await cancel(client, session) == 1
    started = time.monotonic()
    done = await client.completed(run_id, timeout=3)
    assert time.monotonic() - started < 1
    assert done["finishReason"] == "canceled"
    resolved = [n for n in client.of_run(run_id) if n["type"] == "permission_resolved"]
    assert [(r["decision"], r["toolCallId"]) for r in resolved] == [("canceled", tool_call_id)]
    # The client's handler was cancelled by the server's $/cancelRequest.
    await asyncio.wait_for(asyncio.wait({never}), 3)
    assert never.cancelled()
    statuses = [n["toolCall"]["status"] for n in client.of_run(run_id) if n["type"] == "tool_call"]
    assert statuses == ["pending", "awaiting_permission", "canceled"]
    status = await client.call("agent/status", {"workspace": client.ws_uri, "sessionId": session})
    assert status["pendingPermissions"] == [] and status["busy"] is False
    results = [p for m in await stored(client, session) for p in m["parts"] if p["type"] == "tool_result"]
    assert len(results) == 1 and results[0]["toolCallId"] == tool_call_id and results[0]["isError"] is True
    assert_runs_end_once(client.notes)


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def appears(path: Path, within: float = 5.0) -> str:
    """The file's content once a child process has written it (nothing to await but the disk)."""
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)
    return path.read_text().strip()


async def test_cancel_kills_a_running_bash_command(start, workspace: Path):
    sleeper = {"events": [{"toolCall": {"name": "bash", "input": {"command": "echo $$ > pid.txt; exec sleep 30"}}}]}
    client = await start({"model": scripted(sleeper), "permissions": {"mode": "allow"}})
    session = await client.new_session()
    run_id = (await client.send(session, "sleep"))["runId"]
    await client.wait_for(lambda n: n["type"] == "tool_call" and n["toolCall"]["status"] == "running")
    pid = int(await appears(workspace / "pid.txt"))
    assert process_alive(pid)
    assert await cancel(client, session) == 1
    started = time.monotonic()
    done = await client.completed(run_id, timeout=3)
    assert time.monotonic() - started < 1
    assert done["finishReason"] == "canceled"
    assert not process_alive(pid)
    statuses = [n["toolCall"]["status"] for n in client.of_run(run_id) if n["type"] == "tool_call"]
    assert statuses[-1] == "canceled"
    results = [p for m in await stored(client, session) for p in m["parts"] if p["type"] == "tool_result"]
    assert [r["isError"] for r in results] == [True]


async def test_cancel_in_one_session_leaves_the_others_alone(start):
    client = await start({"model": SLOW_OR_ECHO})
    one, other = await client.new_session(), await client.new_session()
    run_one = (await client.send(one, "slow in one"))["runId"]
    run_other = (await client.send(other, "brief in the other"))["runId"]
    await first_delta(client, run_one)
    await first_delta(client, run_other)
    assert await cancel(client, one) == 1
    assert await cancel(client, one) == 0  # already ending: nothing more to end
    assert (await client.completed(run_one))["finishReason"] == "canceled"
    assert (await client.completed(run_other))["finishReason"] == "end_turn"


async def test_cancel_by_run_id_of_the_active_run_leaves_the_queue(start):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    active = (await client.send(session, "slow active"))["runId"]
    queued = (await client.send(session, "next in line"))["runId"]
    await first_delta(client, active)
    assert await cancel(client, session, active) == 1
    assert (await client.completed(active))["finishReason"] == "canceled"
    done = await client.completed(queued)
    assert done["finishReason"] == "end_turn" and done["text"] == "next in line"


VIEW_OUTSIDE = {"events": [{"toolCall": {"name": "view", "input": {"file_path": "/etc/hostname"}}}]}


def test_cancel_sends_cancel_request_for_the_pending_permission(workspace: Path):
    raw = RawServer(workspace, {"model": scripted(VIEW_OUTSIDE)}, capabilities={"experimental": {"crush": {"permissions": True}}})
    try:
        session = raw.request("session/create", {"workspace": raw.uri})["result"]["id"]
        run_id = raw.request("agent/sendMessage", {"workspace": raw.uri, "sessionId": session,
                                                   "prompt": "peek"})["result"]["runId"]
        asked = raw.read_until(lambda m: m.get("method") == "agent/requestPermission")  # never answered
        assert asked["params"]["runId"] == run_id and asked["params"]["workspace"] == raw.uri
        assert raw.request("agent/cancel", {"workspace": raw.uri, "sessionId": session})["result"] == {"canceled": 1}
        done = raw.read_until(run_complete_of(run_id), timeout=3)
        withdrawn = [m for m in raw.received if m.get("method") == "$/cancelRequest"]
        assert [m["params"]["id"] for m in withdrawn] == [asked["id"]]
        resolved = [m["params"] for m in raw.received if m.get("method") == "agent/notification"
                    and m["params"]["type"] == "permission_resolved"]
        assert [r["decision"] for r in resolved] == ["canceled"]
        assert raw.received.index(withdrawn[0]) < raw.received.index(done)
        assert done["params"]["finishReason"] == "canceled"
        # A late answer to the withdrawn request changes nothing.
        raw.write({"jsonrpc": "2.0", "id": asked["id"], "result": {"decision": "allow"}})
        status = raw.request("agent/status", {"workspace": raw.uri, "sessionId": session})["result"]
        assert status["busy"] is False and status["pendingPermissions"] == []
    finally:
        raw.close()


async def test_cancel_of_a_host_ends_its_folded_steered_run(start, workspace: Path):
    (workspace / "a.txt").write_text("a\n")
    client = await start({"model": scripted(
        {"step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "a.txt"}}},
                               {"text": "Reading the file now.", "chunkSize": 1, "delayMs": 40}]},
        {"step": 1, "events": [dict(SLOW["events"][0])]},
    )})
    session = await client.new_session()
    host = (await client.send(session, "host"))["runId"]
    await first_delta(client, host)
    steer = (await client.send(session, "and this", mode="steer"))["runId"]
    # Folded at the host's next model call: its user message is stored under its own runId.
    await client.wait_for(lambda n: n["type"] == "message_created" and n["runId"] == steer)
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host and n["text"][0] == "a")
    assert await cancel(client, session) >= 1
    host_done = await client.completed(host)
    steer_done = await client.completed(steer)
    assert host_done["finishReason"] == steer_done["finishReason"] == "canceled"
    assert steer_done["foldedInto"] == host
    assert client.notes.index(steer_done) == client.notes.index(host_done) + 1
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant", "tool", "user", "assistant"]
    assert finish_reason(messages[-1]) == "canceled"


async def test_a_tool_call_cancelled_while_running_stays_on_its_own_message(start):
    from tests.conftest import scripted

    client = await start({"model": scripted(
        {"step": 0, "events": [{"toolCall": {"name": "bash", "input": {"command": "sleep 5"}}}]},
        {"events": [{"text": "done"}]},
    ), "permissions": {"mode": "allow"}})
    session = await client.new_session()
    run_id = (await client.send(session, "sleep"))["runId"]
    running = await client.wait_for(lambda n: n["type"] == "tool_call" and n["toolCall"]["status"] == "running")
    await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})
    await client.completed(run_id)
    canceled = next(n for n in client.of_run(run_id)
                    if n["type"] == "tool_call" and n["toolCall"]["status"] == "canceled")
    assert canceled["messageId"] == running["messageId"]
    stored_call = next(p for m in await client.session_messages(session) for p in m["parts"]
                       if p["type"] == "tool_call")
    assert stored_call["status"] == "canceled"
    assert_runs_end_once(client.notes)

