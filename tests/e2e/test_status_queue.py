"""agent/status, agent/queuedPrompts, agent/clearQueue, agent/models and agent/setModel.

PROTOCOL section 2. Queue state is read while runs are really going: a
session's first prompt streams and then sleeps until it is cancelled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import AgentClient, scripted
from tests.e2e.expect import refused_with
from tests.e2e.runs import assert_runs_end_once
from tests.raw import RawServer

STATUS_KEYS = {"busy", "activeRunId", "queued", "pendingPermissions", "lastSeq", "model"}
MODEL_KEYS = {"provider", "model", "name", "contextWindow", "supportsTools"}
PERMISSION_KEYS = {"id", "toolCallId", "tool", "action", "description", "input"}  # and path when it has one

SCRIPT = scripted(
    {"when": "hold", "events": [{"text": "holding"}, {"sleepMs": 5000}]},  # runs until cancelled
    {"when": "brief", "events": [{"text": "brief start"}, {"sleepMs": 800}, {"text": " and end"}]},
    {"when": "write", "step": 0, "events": [{"toolCall": {"name": "write",
                                                          "input": {"file_path": "new.txt", "content": "x"}}}]},
    {"when": "write", "step": 1, "events": [{"text": "written"}]},
    {"events": [{"text": "done"}]},
)


def ws(client: AgentClient, **params: Any) -> dict[str, Any]:
    return {"workspace": client.ws_uri, **params}


async def status(client: AgentClient, session: str | None = None) -> dict[str, Any]:
    result = await client.call("agent/status", ws(client) if session is None else ws(client, sessionId=session))
    assert set(result) == STATUS_KEYS
    # Notifications are written before the reply, so the client has seen exactly lastSeq of them.
    assert result["lastSeq"] == max((n["seq"] for n in client.notes), default=0)
    return result


async def started(client: AgentClient, run_id: str) -> None:
    await client.wait_for(lambda n: n["type"] == "text_delta" and n.get("runId") == run_id)


def ended_once(client: AgentClient, run_id: str, reason: str) -> dict[str, Any]:
    assert_runs_end_once(client.notes, [run_id])
    done = client.of_run(run_id)[-1]
    assert done["finishReason"] == reason, done
    return done


# ---------------------------------------------------------------------- agent/status and agent/queuedPrompts
async def test_status_of_an_idle_workspace_and_session(start):
    client = await start({"model": SCRIPT})
    idle = {"busy": False, "activeRunId": None, "queued": [], "pendingPermissions": []}
    workspace = await status(client)
    assert {k: workspace[k] for k in idle} == idle and workspace["lastSeq"] == 0
    assert set(workspace["model"]) == MODEL_KEYS and workspace["model"]["provider"] == "scripted"
    session = await client.new_session()
    await client.completed((await client.send(session, "anything"))["runId"])
    for result in (await status(client), await status(client, session)):
        assert {k: result[k] for k in idle} == idle
        assert result["lastSeq"] > 0
    assert await client.call("agent/queuedPrompts", ws(client, sessionId=session)) == {"prompts": [], "runIds": []}


async def test_status_and_queued_prompts_while_runs_wait(start):
    client = await start({"model": SCRIPT})
    one, two = await client.new_session(), await client.new_session()
    runs = {}
    for session, run_id, prompt in ((one, "a1", "hold on"), (one, "a2", "second prompt"), (one, "a3", "third prompt"),
                                    (two, "b1", "hold too"), (two, "b2", "other queued")):
        runs[run_id] = await client.send(session, prompt, runId=run_id)
    assert [(runs[r]["queued"], runs[r]["position"]) for r in ("a1", "a2", "a3", "b1", "b2")] == \
        [(False, 0), (True, 1), (True, 2), (False, 0), (True, 1)]
    await started(client, "a1"), await started(client, "b1")

    first = await status(client, one)
    assert (first["busy"], first["activeRunId"]) == (True, "a1")
    assert first["queued"] == [{"runId": "a2", "prompt": "second prompt"}, {"runId": "a3", "prompt": "third prompt"}]
    second = await status(client, two)
    assert (second["busy"], second["activeRunId"], second["queued"]) == \
        (True, "b1", [{"runId": "b2", "prompt": "other queued"}])
    workspace = await status(client)
    assert (workspace["busy"], workspace["activeRunId"]) == (True, None)
    assert sorted(q["runId"] for q in workspace["queued"]) == ["a2", "a3", "b2"]
    assert await client.call("agent/queuedPrompts", ws(client, sessionId=one)) == \
        {"prompts": ["second prompt", "third prompt"], "runIds": ["a2", "a3"]}
    got = await client.call("session/get", ws(client, sessionId=one))
    assert got["busy"] is True

    assert (await client.call("agent/cancel", ws(client, sessionId=one)))["canceled"] == 3
    assert (await client.call("agent/cancel", ws(client, sessionId=two)))["canceled"] == 2
    for run_id in runs:
        await client.completed(run_id)
        ended_once(client, run_id, "canceled")
    after = await status(client)
    assert (after["busy"], after["queued"]) == (False, [])


async def test_pending_permissions_in_status(start):
    client = await start({"model": SCRIPT}, permissions=True)
    decision: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    client.permission_answer = lambda _params: decision
    session, bystander = await client.new_session(), await client.new_session()
    run = await client.send(session, "write it", runId="asks")
    requested = await client.wait_for(lambda n: n["type"] == "permission_requested")
    permission = requested["permission"]
    assert PERMISSION_KEYS <= set(permission) <= PERMISSION_KEYS | {"path"}
    assert (permission["tool"], permission["action"]) == ("write", "write")
    assert permission["path"] == str(client.root.resolve() / "new.txt")

    assert (await status(client, session))["pendingPermissions"] == [permission]
    assert (await status(client))["pendingPermissions"] == [permission]
    assert (await status(client, bystander))["pendingPermissions"] == []

    decision.set_result({"decision": "allow"})
    assert (await client.completed(run["runId"]))["finishReason"] == "end_turn"
    assert (client.root / "new.txt").read_text() == "x"
    assert (await status(client, session))["pendingPermissions"] == []


# ---------------------------------------------------------------------- agent/clearQueue
async def test_clear_queue_cancels_waiting_runs_and_stores_nothing_of_them(start):
    client = await start({"model": SCRIPT})
    session = await client.new_session()
    assert await client.call("agent/clearQueue", ws(client, sessionId=session)) == {
        "cleared": 0, "prompts": [], "runIds": []}
    await client.send(session, "brief one", runId="active")
    await client.send(session, "queued one", runId="q1")
    await client.send(session, "queued two", runId="q2")
    await started(client, "active")
    assert await client.call("agent/clearQueue", ws(client, sessionId=session)) == {
        "cleared": 2, "prompts": ["queued one", "queued two"], "runIds": ["q1", "q2"]}
    assert await client.call("agent/queuedPrompts", ws(client, sessionId=session)) == {"prompts": [], "runIds": []}
    for run_id in ("q1", "q2"):
        done = ended_once(client, run_id, "canceled")
        assert done["text"] == ""
        assert "run_started" not in client.types_of(run_id)
    # The active run is not touched.
    assert (await client.completed("active"))["text"] == "brief start and end"
    ended_once(client, "active", "end_turn")
    texts = [p["text"] for m in await client.session_messages(session) for p in m["parts"] if p["type"] == "text"]
    assert texts == ["brief one", "brief start and end"]
    # The session takes prompts afterwards.
    assert (await client.completed((await client.send(session, "next"))["runId"]))["text"] == "done"


# ---------------------------------------------------------------------- agent/models and agent/setModel
async def test_models_shape(start):
    client = await start({"model": SCRIPT})
    models = await client.call("agent/models", ws(client))
    assert set(models) == {"current", "available"}
    assert set(models["current"]) == MODEL_KEYS
    assert (models["current"]["provider"], models["current"]["supportsTools"]) == ("scripted", True)
    assert models["current"] in models["available"]
    assert all(set(m) == MODEL_KEYS for m in models["available"])
    assert (await status(client))["model"] == models["current"]
    await refused_with(client, "agent/models", {"workspace": "file:///nowhere"}, "workspace_not_found", -32011)


async def test_set_model_switches_the_next_prompt(start):
    client = await start({"model": SCRIPT})
    session = await client.new_session()
    assert (await client.completed((await client.send(session, "before"))["runId"]))["text"] == "done"
    switched = await client.call("agent/setModel", ws(client, model={"provider": "echo"}))
    assert set(switched) == {"current"} and set(switched["current"]) == MODEL_KEYS
    assert switched["current"]["provider"] == "echo"
    assert (await client.call("agent/models", ws(client)))["current"] == switched["current"]
    assert (await status(client))["model"] == switched["current"]
    done = await client.completed((await client.send(session, "say these words back"))["runId"])
    assert (done["finishReason"], done["text"]) == ("end_turn", "say these words back")


async def test_set_model_refusals_keep_the_current_model(start):
    client = await start({"model": SCRIPT})
    current = (await client.call("agent/models", ws(client)))["current"]
    for bad in ({"provider": "sideways"}, {"provider": "echo", "supportsTools": "no"},
                {"provider": "echo", "delayMs": "fast"}, {"provider": 5}):
        error = await refused_with(client, "agent/setModel", ws(client, model=bad), "invalid_params", -32602)
        assert "model" in error.message
    await refused_with(client, "agent/setModel", ws(client), "invalid_params", -32602)
    await refused_with(client, "agent/setModel", ws(client, model={"provider": "scripted", "scriptPath": "nope.json"}),
                       "agent_not_initialized", -32012)
    assert (await client.call("agent/models", ws(client)))["current"] == current


async def test_set_model_to_a_string_is_invalid_params(start):
    client = await start({"model": SCRIPT})
    current = (await client.call("agent/models", ws(client)))["current"]
    await refused_with(client, "agent/setModel", ws(client, model="echo"), "invalid_params", -32602)
    assert (await client.call("agent/models", ws(client)))["current"] == current


async def test_set_model_makes_an_uninitialized_workspace_usable(start):
    client = await start({"model": {"provider": "scripted", "scriptPath": "missing.json"}})
    session = await client.new_session()
    await refused_with(client, "agent/sendMessage", ws(client, sessionId=session, prompt="hi"),
                       "agent_not_initialized", -32012)
    assert (await status(client))["model"] is None
    await client.call("agent/setModel", ws(client, model={"provider": "echo"}))
    assert (await client.completed((await client.send(session, "now it works"))["runId"]))["text"] == "now it works"


# ---------------------------------------------------------------------- unknown and missing sessions
async def test_unknown_session_is_session_not_found(start):
    client = await start({"model": SCRIPT})
    for method in ("agent/cancel", "agent/status", "agent/queuedPrompts", "agent/clearQueue"):
        await refused_with(client, method, ws(client, sessionId="ghost"), "session_not_found", -32014)
        await refused_with(client, method, ws(client, sessionId=["ghost"]), "invalid_params", -32602)
        await refused_with(client, method, {"workspace": "file:///nowhere", "sessionId": "ghost"},
                           "workspace_not_found", -32011)
        if method != "agent/status":  # without a session, status describes the workspace
            await refused_with(client, method, ws(client), "session_missing", -32602)
    assert client.notes == []


# ---------------------------------------------------------------------- requests take effect in arrival order
def test_status_right_after_send_message_sees_the_run(workspace: Path):
    server = RawServer(workspace, {"model": SCRIPT})
    try:
        session = server.request("session/create", {})["result"]["id"]
        calls = [
            ("agent/sendMessage", {"sessionId": session, "prompt": "hold on", "runId": "r1"}),
            ("agent/status", {"sessionId": session}),
            ("agent/status", {}),
            ("session/get", {"sessionId": session}),
            ("agent/sendMessage", {"sessionId": session, "prompt": "second", "runId": "r2"}),
            ("agent/queuedPrompts", {"sessionId": session}),
            ("agent/status", {"sessionId": session}),
        ]
        server.write_together(*({"jsonrpc": "2.0", "id": 100 + i, "method": m, "params": p}
                                 for i, (m, p) in enumerate(calls)))
        sent, status_one, status_all, got, queued, prompts, status_two = (
            server.read_until(lambda m, i=i: m.get("id") == 100 + i and "method" not in m)["result"]
            for i in range(len(calls)))
        assert (sent["queued"], queued["queued"], queued["position"]) == (False, True, 1)
        assert prompts == {"prompts": ["second"], "runIds": ["r2"]}
        assert (status_two["activeRunId"], status_two["queued"]) == ("r1", [{"runId": "r2", "prompt": "second"}])
        assert (status_one["busy"], status_one["activeRunId"]) == (True, "r1")
        assert status_all["busy"] is True and got["busy"] is True
    finally:
        server.close()


async def test_the_session_stays_busy_between_a_run_and_the_next_queued_one(start):
    client = await start({"model": {"provider": "echo", "delayMs": 100}})
    session = await client.new_session()
    first = (await client.send(session, "one two three four five"))["runId"]  # about 0.5 s
    second = (await client.send(session, "four five"))["runId"]
    done = await client.completed(first)
    after = await client.wait_for(lambda n: n["seq"] > done["seq"] and n["type"] == "session_updated"
                                  and "runId" not in n)
    assert after["session"]["busy"] is True  # the second run is about to start
    last = await client.completed(second)
    after = await client.wait_for(lambda n: n["seq"] > last["seq"] and n["type"] == "session_updated"
                                  and "runId" not in n)
    assert after["session"]["busy"] is False

