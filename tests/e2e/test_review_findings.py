"""Defects found by reviewing the core against PROTOCOL.md, each proven through the protocol."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.e2e.runs import assert_runs_end_once
from tests.e2e.test_queue import steer_script


async def test_a_folded_steered_run_id_can_be_used_again_after_it_completed(start, workspace: Path):
    # PROTOCOL: only a runId of a run that has not completed is invalid_params.
    (workspace / "notes.txt").write_text("remember the milk\n")
    client = await start({"model": steer_script()})
    session = await client.new_session()
    host = (await client.send(session, "host: read notes"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host)
    await client.send(session, "also mind the eggs", mode="steer", runId="steer-1")
    steered = await client.completed("steer-1")
    assert steered["foldedInto"] == host
    again = await client.send(session, "plain again", runId="steer-1")
    assert again["runId"] == "steer-1"
    await client.completed("steer-1")


def folders_changed(client, added: list[str], removed: list[str]) -> None:
    def folders(uris: list[str]) -> list[types.WorkspaceFolder]:
        return [types.WorkspaceFolder(uri=uri, name="ws") for uri in uris]

    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=folders(added), removed=folders(removed))))


async def create_when_open(client, within: float = 5.0) -> dict:
    """session/create until the old workspace has closed (no notification marks that moment)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await client.call("session/create", {"workspace": client.ws_uri})
        except JsonRpcException as exc:
            if exc.data["reason"] != "workspace_closing" or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


async def test_a_folder_removed_and_added_again_is_open_afterwards(start, workspace: Path):
    client = await start({"model": {"provider": "echo"}})
    session = await client.new_session()
    folders_changed(client, added=[client.ws_uri], removed=[client.ws_uri])
    await create_when_open(client)
    kept = await client.call("session/get", {"workspace": client.ws_uri, "sessionId": session})
    assert kept["id"] == session
    run_id = (await client.send(session, "still here"))["runId"]
    assert (await client.completed(run_id))["finishReason"] == "end_turn"
    assert_runs_end_once(client.notes)


async def test_a_rename_during_title_generation_is_kept(start):
    import threading

    from tests.e2e.test_titles_summaries import model, requests_arrived, run
    from tests.providers import fake_openai as openai
    from tests.providers.fake_vendor import Hold

    release = threading.Event()
    title = [Hold(release), *openai.text_stream("Late title")]
    with openai.FakeOpenAI([openai.text_stream("answer")]) as main, \
            openai.FakeOpenAI([title], titles=None) as small:
        client = await start({"model": model(main), "smallModel": model(small, model="tiny-test")})
        session = await client.new_session()
        await run(client, session, "a prompt whose title is slow")
        await requests_arrived(small, 1)
        await client.call("session/rename", {"workspace": client.ws_uri, "sessionId": session, "title": "Mine"})
        mark = client.notes[-1]["seq"]
        release.set()
        late = await client.wait_for(lambda n: n["seq"] > mark and n["type"] == "session_updated"
                                     and n["sessionId"] == session)
        assert late["session"]["title"] == "Mine"
        got = await client.call("session/get", {"workspace": client.ws_uri, "sessionId": session})
        assert got["title"] == "Mine"
        await client.shutdown_session()


async def test_a_model_replaced_by_set_model_lets_go_of_its_connections(start):
    from tests.e2e.test_titles_summaries import model, open_connections, run
    from tests.providers import fake_openai as openai

    with openai.FakeOpenAI([openai.text_stream("one"), openai.text_stream("two")], titles="T") as main:
        client = await start({"model": model(main)})
        session = await client.new_session()
        await run(client, session, "first")  # the first model keeps its connection alive
        await client.wait_for(lambda n: n["type"] == "session_updated" and n["session"]["title"] == "T")
        await client.call("agent/setModel", {"workspace": client.ws_uri, "model": model(main)})
        await run(client, session, "second")
        port = int(main.origin.rsplit(":", 1)[1])
        assert open_connections(client._server.pid, port) == 1  # the current model's only
        await client.shutdown_session()


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


async def test_a_folder_that_cannot_be_opened_does_not_keep_the_others_closed(start, tmp_path: Path):
    broken, good = tmp_path / "broken", tmp_path / "good"
    broken.mkdir()
    good.mkdir()
    (broken / ".crush").write_text("a file where the data directory should be\n")
    client = await start({"model": {"provider": "echo"}}, folders=[broken, good])
    created = await client.call("session/create", {"workspace": good.as_uri()})
    assert created["title"] == "New Session"
    try:
        await client.call("session/list", {"workspace": broken.as_uri()})
    except JsonRpcException as exc:
        assert exc.data["reason"] == "workspace_not_found"
        assert ".crush" in str(exc)  # says why, not just "not open"
    else:
        raise AssertionError("a folder that could not be opened answered")
    folders_changed(client, added=[], removed=[broken.as_uri()])
    try:
        await client.call("session/list", {"workspace": broken.as_uri()})
    except JsonRpcException as exc:
        assert "is not open" in str(exc)  # removed: its old failure is no longer the reason
    else:
        raise AssertionError("a removed folder answered")


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


def test_a_session_created_is_seen_by_the_request_right_behind_it(workspace: Path):
    # PROTOCOL: requests take effect in the order they arrive.
    from tests.raw import RawServer

    raw = RawServer(workspace, {"model": {"provider": "echo"}})
    try:
        raw.write_together(*({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": {"workspace": raw.uri}}
                             for msg_id, method in ((101, "session/create"), (102, "session/list"))))
        answered: set[int] = set()
        raw.read_until(lambda m: answered.add(m.get("id")) or {101, 102} <= answered)
        created, listed = (next(m["result"] for m in raw.received if m.get("id") == i) for i in (101, 102))
        assert [s["id"] for s in listed["sessions"]] == [created["id"]]
    finally:
        raw.close()


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


async def test_a_folder_removed_added_and_removed_again_stays_closed(start):
    client = await start({"model": {"provider": "echo"}})
    await client.new_session()
    folders_changed(client, added=[client.ws_uri], removed=[client.ws_uri])
    folders_changed(client, added=[], removed=[client.ws_uri])
    deadline = time.monotonic() + 5
    while True:
        try:
            await client.call("session/list", {"workspace": client.ws_uri})
        except JsonRpcException as exc:
            assert exc.data["reason"] == "workspace_not_found"
            break
        assert time.monotonic() < deadline, "the workspace never closed"
        await asyncio.sleep(0.02)
