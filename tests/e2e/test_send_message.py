"""agent/sendMessage through the real protocol: its checks (in order), its result and its ordering.

PROTOCOL section 2 (agent/sendMessage) and section 5 (errors). Every refused
prompt must leave no trace: no notification, nothing stored.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import AgentClient, say, scripted
from tests.e2e.expect import refused_with
from tests.e2e.runs import assert_runs_end_once, assert_seq_numbers
from tests.raw import RawServer, run_complete_of

SLOW = scripted({"events": [{"sleepMs": 600}, {"text": "slow done"}]})
QUICK = scripted(say("quick answer", chunk=4))
SEND = "agent/sendMessage"


def params(client: AgentClient, session: str | None, prompt: Any = "hello", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"workspace": client.ws_uri, "prompt": prompt, **extra}
    if session is not None:
        body["sessionId"] = session
    return body


async def assert_nothing_happened(client: AgentClient, session: str) -> None:
    """A refused prompt starts nothing and stores nothing."""
    assert client.notes == []
    assert await client.session_messages(session) == []


# ---------------------------------------------------------------------- each check
WRONG_TYPES = [
    {"sessionId": 5},
    {"prompt": 5},
    {"prompt": ["hello"]},
    {"runId": 7},
    {"mode": "sideways"},
    {"mode": 1},
    {"attachments": "a.txt"},
    {"attachments": {"text": "x"}},
    {"attachments": [{"text": 5}]},
    {"attachments": [{"path": "a.txt", "mimeType": False}]},
    {"workspace": 3},
]


async def test_wrong_types_and_unknown_enum_values_are_invalid_params(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    for bad in WRONG_TYPES:
        error = await refused_with(client, SEND, {**params(client, session), **bad}, "invalid_params", -32602)
        field = next(iter(bad))
        assert field in error.message, f"the message should name the field: {error.message}"
    await assert_nothing_happened(client, session)


async def test_attachment_that_is_not_an_object_is_invalid_params(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    body = params(client, session, attachments=["a.txt"])
    error = await refused_with(client, SEND, body, "invalid_params", -32602)
    assert "attachments" in error.message
    await assert_nothing_happened(client, session)


async def test_unknown_workspace_is_workspace_not_found(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    other = (client.root.parent / "elsewhere").as_uri()
    await refused_with(client, SEND, {**params(client, session), "workspace": other}, "workspace_not_found", -32011)
    await assert_nothing_happened(client, session)


async def test_two_workspaces_and_none_named_is_workspace_not_found(start, tmp_path: Path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir(), second.mkdir()
    client = await start({"model": SLOW}, folders=[first, second])  # the first run is live when the second comes
    session = await client.new_session()  # names the first workspace
    unnamed = {"sessionId": session, "prompt": "hello"}
    error = await refused_with(client, SEND, unnamed, "workspace_not_found", -32011)
    assert first.as_uri() in error.message and second.as_uri() in error.message
    # Both are open and usable by name; a runId is unique per workspace only.
    for folder in (first, second):
        client.ws_uri = folder.as_uri()
        sid = await client.new_session()
        assert (await client.send(sid, "hi", runId="same"))["runId"] == "same"
    ends = [await client.wait_for(lambda n, uri=f.as_uri(): n["type"] == "run_complete" and n["workspace"] == uri)
            for f in (first, second)]
    assert [e["finishReason"] for e in ends] == ["end_turn", "end_turn"]


async def test_an_alias_uri_names_the_same_workspace(start, workspace: Path, tmp_path: Path):
    alias = tmp_path / "alias"
    alias.symlink_to(workspace, target_is_directory=True)
    client = await start({"model": QUICK}, folders=[workspace, alias])
    session = await client.new_session()
    for uri in (workspace.as_uri(), alias.as_uri(), None):  # one workspace: it may also be left out
        body = {"sessionId": session, "prompt": "hi"} | ({"workspace": uri} if uri else {})
        done = await client.completed((await client.call(SEND, body))["runId"])
        assert done["finishReason"] == "end_turn" and done["workspace"] == workspace.as_uri()
    assert len(await client.session_messages(session)) == 6
    # A URI the client never sent is not a workspace, even if it is inside one.
    (workspace / "sub").mkdir()
    await refused_with(client, SEND, {**params(client, session), "workspace": (workspace / "sub").as_uri()},
                       "workspace_not_found", -32011)


async def test_binary_attachment_is_stored_with_the_user_message(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    data = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    picture = {"path": "shot.png", "mimeType": "image/png", "content": data}
    done = await client.completed((await client.send(session, "look at this", attachments=[picture]))["runId"])
    assert done["finishReason"] == "end_turn"
    user = (await client.session_messages(session))[0]
    assert user["parts"] == [{"type": "text", "text": "look at this"},
                             {"type": "binary", "path": "shot.png", "mimeType": "image/png", "data": data}]


@pytest.mark.parametrize(("model", "hint"), [
    ({"provider": "scripted", "scriptPath": "missing.json"}, "missing.json"),
    ({"provider": "scripted", "script": {"responses": "not a list"}}, "script"),
    # The environment decides: the key variable is not set for the server.
    ({"provider": "openai", "model": "gpt-4o-mini", "apiKey": "$CRUSH_LS_TEST_UNSET_KEY"}, "CRUSH_LS_TEST_UNSET_KEY"),
])
async def test_no_usable_model_is_agent_not_initialized(start, model, hint):
    client = await start({"model": model})
    session = await client.new_session()  # sessions work without a model
    error = await refused_with(client, SEND, params(client, session), "agent_not_initialized", -32012)
    assert hint in error.message  # the message says what to fix
    await assert_nothing_happened(client, session)
    # The check order: a model is checked before the prompt and the session.
    await refused_with(client, SEND, {"workspace": client.ws_uri, "prompt": ""}, "agent_not_initialized", -32012)
    # ...and after the workspace.
    await refused_with(client, SEND, {"workspace": "file:///nowhere", "prompt": " "}, "workspace_not_found", -32011)


async def test_missing_or_blank_prompt_is_empty_prompt(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    picture = {"path": "a.png", "mimeType": "image/png", "content": base64.b64encode(b"\x89PNG").decode()}
    for body in (
        {"workspace": client.ws_uri, "sessionId": session},
        params(client, session, ""),
        params(client, session, "   \n\t "),
        params(client, session, None),
        params(client, session, "", attachments=[picture]),  # a binary attachment is not a prompt
    ):
        await refused_with(client, SEND, body, "empty_prompt", -32602)
    await assert_nothing_happened(client, session)


async def test_text_attachment_without_prompt_is_accepted(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    for attachment in (
        {"path": "notes.txt", "text": "the attached words"},
        {"path": "notes.md", "mimeType": "text/markdown", "content": base64.b64encode(b"more attached words").decode()},
    ):
        body = {"workspace": client.ws_uri, "sessionId": session, "attachments": [attachment]}
        result = await client.call(SEND, body)
        assert (await client.completed(result["runId"]))["finishReason"] == "end_turn"
    stored = [m for m in await client.session_messages(session) if m["role"] == "user"]
    assert "the attached words" in stored[0]["parts"][0]["text"]
    assert "more attached words" in stored[1]["parts"][0]["text"]


async def test_missing_null_or_empty_session_is_session_missing_unknown_is_not_found(start):
    client = await start({"model": QUICK})
    no_session = params(client, None)
    await refused_with(client, SEND, no_session, "session_missing", -32602)
    await refused_with(client, SEND, {**no_session, "sessionId": None}, "session_missing", -32602)
    await refused_with(client, SEND, {**no_session, "sessionId": ""}, "session_missing", -32602)
    await refused_with(client, SEND, params(client, "no-such-session"), "session_not_found", -32014)
    assert client.notes == []
    assert (await client.call("session/list", {"workspace": client.ws_uri}))["sessions"] == []


async def test_check_order_with_a_model(start):
    client = await start({"model": QUICK})
    # A wrong type wins over everything.
    await refused_with(client, SEND, {"workspace": "file:///nowhere", "sessionId": 5, "prompt": ""},
                       "invalid_params", -32602)
    await refused_with(client, SEND, {"workspace": "file:///nowhere", "mode": "sideways"}, "invalid_params", -32602)
    # Then the workspace, the prompt, the session's presence, the session's existence.
    await refused_with(client, SEND, {"workspace": "file:///nowhere", "prompt": ""}, "workspace_not_found", -32011)
    await refused_with(client, SEND, {"workspace": client.ws_uri, "prompt": ""}, "empty_prompt", -32602)
    await refused_with(client, SEND, {"workspace": client.ws_uri, "sessionId": "ghost", "prompt": " "},
                       "empty_prompt", -32602)
    await refused_with(client, SEND, params(client, ""), "session_missing", -32602)
    assert client.notes == []


async def test_runid_of_a_live_run_is_invalid_params_and_free_again_after(start):
    client = await start({"model": SLOW})
    session = await client.new_session()
    other = await client.new_session()
    await client.send(session, "first", runId="mine")
    error = await refused_with(client, SEND, params(client, other, runId="mine"), "invalid_params", -32602)
    assert "runId" in error.message
    assert (await client.completed("mine"))["finishReason"] == "end_turn"
    again = await client.send(other, "second", runId="mine")  # a completed run frees its id
    assert again["runId"] == "mine"
    await client.wait_for(lambda n: n["type"] == "run_complete" and n["sessionId"] == other)
    assert client.types_of("mine").count("run_complete") == 2  # one per run


# ---------------------------------------------------------------------- workspace_closing (raw wire)
def replies(server: RawServer, *msg_ids: int) -> dict[int, dict[str, Any]]:
    """The responses to `msg_ids`, reading until all have come (other messages stay in `received`)."""
    def answered() -> dict[int, dict[str, Any]]:
        return {m["id"]: m for m in server.received if "method" not in m and m.get("id") in msg_ids}

    while len(answered()) < len(msg_ids):
        server.read_until(lambda m: "method" not in m and m.get("id") in msg_ids)
    return answered()


def test_prompts_sent_while_shutdown_closes_the_workspace(workspace: Path):
    """`shutdown` starts closing at once: prompts behind it are refused, checks still in order."""
    server = RawServer(workspace, {"model": scripted({"events": [{"sleepMs": 5000}]})})
    try:
        session = server.request("session/create", {})["result"]["id"]
        server.request(SEND, {"sessionId": session, "prompt": "long", "runId": "slow"})
        server.read_until(lambda m: m.get("params", {}).get("type") == "run_started")
        shutdown = server.send_request("shutdown")
        expected = {
            server.send_request(SEND, {"sessionId": session, "prompt": "too late"}): "workspace_closing",
            server.send_request(SEND, {"prompt": "too late"}): "session_missing",
            server.send_request(SEND, {"sessionId": "ghost", "prompt": "too late"}): "session_not_found",
            server.send_request(SEND, {"sessionId": session, "prompt": " "}): "empty_prompt",
            server.send_request("session/create", {}): "workspace_closing",
        }
        answers = replies(server, shutdown, *expected)
        assert {i: answers[i]["error"]["data"]["reason"] for i in expected} == expected
        assert {answers[i]["error"]["code"] for i in expected if expected[i] == "workspace_closing"} == {-32013}
        assert answers[shutdown].get("result", "missing") is None
        # The run that was going ended canceled before shutdown replied.
        done = next(m for m in server.received if run_complete_of("slow")(m))
        assert done["params"]["finishReason"] == "canceled"
        assert server.received.index(done) < server.received.index(answers[shutdown])
        after = server.request(SEND, {"sessionId": session, "prompt": "after"})
        assert after["error"]["data"]["reason"] == "server_shutting_down"
        server.notify("exit")
        assert server.proc.wait(5) == 0
    finally:
        server.close()


# ---------------------------------------------------------------------- the result
async def test_accepted_result_shape_with_client_run_id(start):
    client = await start({"model": QUICK})
    session = await client.new_session()
    result = await client.send(session, "hi", runId="client-run-1")
    assert result == {"accepted": True, "runId": "client-run-1", "sessionId": session, "queued": False, "position": 0}
    await client.completed("client-run-1")
    of_run = [n for n in client.notes if "runId" in n]
    assert of_run and all(n["runId"] == "client-run-1" for n in of_run)
    # Only the session's own bookkeeping (busy again false) is not a notification of the run.
    assert {n["type"] for n in client.notes if "runId" not in n} <= {"session_updated"}
    assert all(n["sessionId"] == session and n["workspace"] == client.ws_uri for n in client.notes)


async def test_generated_run_ids_are_unique_and_carried(start):
    client = await start({"model": scripted({"when": "one", **say("quick answer", delay_ms=200)},
                                            say("quick answer"))})
    session = await client.new_session()
    first, second = await asyncio.gather(client.send(session, "one"), client.send(session, "two"))
    assert isinstance(first["runId"], str) and first["runId"]
    assert first["runId"] != second["runId"]
    assert (first["queued"], first["position"]) == (False, 0)
    assert (second["queued"], second["position"]) == (True, 1)
    for result in (first, second):
        done = await client.completed(result["runId"])
        assert done["text"] == "quick answer"
        assert client.types_of(result["runId"])[-1] == "run_complete"


# ---------------------------------------------------------------------- wire order (raw)
def notifications_of(server: RawServer, run_id: str) -> list[dict[str, Any]]:
    return [m for m in server.received
            if m.get("method") == "agent/notification" and m["params"].get("runId") == run_id]


def read_until_all_complete(server: RawServer, run_ids: Any) -> None:
    left = set(run_ids)
    while left:
        done = server.read_until(lambda m: any(run_complete_of(r)(m) for r in left))
        left.discard(done["params"]["runId"])


def test_response_precedes_every_notification_of_its_run(workspace: Path):
    server = RawServer(workspace, {"model": scripted({"when": "one", **say("ab", chunk=1, delay_ms=100)}, say("cd"))})
    try:
        session = server.request("session/create", {})["result"]["id"]
        first = server.send_request(SEND, {"sessionId": session, "prompt": "one", "runId": "r1"})
        second = server.send_request(SEND, {"sessionId": session, "prompt": "two", "runId": "r2"})
        read_until_all_complete(server, ["r1", "r2"])
        order = server.received
        first_reply = next(i for i, m in enumerate(order) if m.get("id") == first)
        second_reply = next(i for i, m in enumerate(order) if m.get("id") == second)
        assert order[second_reply]["result"]["queued"] is True
        for run_id, reply in (("r1", first_reply), ("r2", second_reply)):
            notes = notifications_of(server, run_id)
            assert notes and order.index(notes[0]) > reply, f"{run_id}: a notification came before the response"
        queued = [m for m in notifications_of(server, "r2") if m["params"]["type"] == "run_queued"]
        assert len(queued) == 1 and queued[0]["params"]["position"] == 1
    finally:
        server.close()


def test_generated_run_id_notifications_follow_the_response(workspace: Path):
    server = RawServer(workspace, {"model": QUICK})
    try:
        session = server.request("session/create", {})["result"]["id"]
        msg_id = server.send_request(SEND, {"sessionId": session, "prompt": "one"})
        first = server.read_until(lambda m: True)  # the very next message on the wire
        assert first.get("id") == msg_id, first
        server.read_until(run_complete_of(first["result"]["runId"]))
    finally:
        server.close()


def test_cancelling_the_request_does_not_end_the_run(workspace: Path):
    server = RawServer(workspace, {"model": scripted(say("still here", chunk=3, delay_ms=20))})
    try:
        session = server.request("session/create", {})["result"]["id"]
        msg_id = server.send_request(SEND, {"sessionId": session, "prompt": "go", "runId": "kept"})
        server.notify("$/cancelRequest", {"id": msg_id})
        done = server.read_until(run_complete_of("kept"))["params"]
        assert (done["finishReason"], done["text"]) == ("end_turn", "still here")
        reply = next(m for m in server.received if m.get("id") == msg_id and "method" not in m)
        assert reply["result"]["accepted"] is True
    finally:
        server.close()


def test_seq_numbers_every_notification_and_run_complete_is_last(workspace: Path):
    (workspace / "a.txt").write_text("alpha\n")
    script = scripted(
        {"when": "tool", "step": 0, "events": [
            {"text": "looking"}, {"toolCall": {"name": "view", "input": {"file_path": "a.txt"}}}]},
        {"when": "tool", "step": 1, "events": [{"text": "seen it", "chunkSize": 2, "delayMs": 5}]},
        say("plain answer", chunk=3, delay_ms=5),
    )
    server = RawServer(workspace, {"model": script, "streamIntervalMs": 0})
    try:
        one = server.request("session/create", {})["result"]["id"]
        two = server.request("session/create", {})["result"]["id"]
        runs = {"t1": one, "p1": one, "t2": two, "p2": two}  # two sessions at once, one queued run each
        for run_id, session in runs.items():
            server.send_request(SEND, {"sessionId": session, "prompt": "tool" if run_id[0] == "t" else "plain",
                                       "runId": run_id})
        read_until_all_complete(server, runs)
        status = server.request("agent/status", {})["result"]
        notes = [m["params"] for m in server.received if m.get("method") == "agent/notification"]
        assert_seq_numbers(notes)
        assert status["lastSeq"] == len(notes)
        assert_runs_end_once(notes, list(runs))
        assert all("run_started" in [n["type"] for n in notes if n.get("runId") == r] for r in runs)
        seen = {n["type"] for n in notes}
        assert seen >= {"run_queued", "tool_call", "tool_result", "text_delta", "message_finished"}
    finally:
        server.close()


async def test_an_attachment_whose_content_is_not_base64_is_invalid_params(start):
    client = await start({"model": {"provider": "echo"}})
    session = await client.new_session()
    try:
        await client.send(session, "look", attachments=[{"path": "a.txt", "mimeType": "text/plain",
                                                         "content": "%%%not base64"}])
    except JsonRpcException as exc:
        assert exc.data["reason"] == "invalid_params"
        assert "params.attachments[0].content" in str(exc)
    else:
        raise AssertionError("accepted, then the run failed with an internal error and lost the prompt")
    assert await client.session_messages(session) == []

