"""A run's ending and the server's lifetime: one run_complete per run, always last,
whatever ends it (success, provider error, cancel, closing the workspace,
shutdown, end of input); exit codes; requests after shutdown.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import SERVER_CMD, read_db, say, scripted, server_env
from tests.e2e.runs import assert_runs_end_once, assert_seq_numbers, barrier, finish_reason, roles, stored, text
from tests.raw import RawServer, run_complete_of

SLOW = say("abcdefghijklmnopqrstuvwxyz" * 4, chunk=1, delay_ms=30)  # about 3 s: cancelled long before its end


def note_of(run_id: str, kind: str):
    return lambda m: (m.get("method") == "agent/notification" and m["params"]["type"] == kind
                      and m["params"].get("runId") == run_id)


def raw_prompt(raw: RawServer, prompt: str = "hello") -> tuple[str, str]:
    """Create a session and send a prompt; returns (session id, run id)."""
    session = raw.request("session/create", {"workspace": raw.uri})["result"]["id"]
    accepted = raw.request("agent/sendMessage", {"workspace": raw.uri, "sessionId": session, "prompt": prompt})
    return session, accepted["result"]["runId"]


async def test_success_ends_with_one_run_complete(start):
    client = await start({"model": scripted(say("All good", chunk=3))})
    session = await client.new_session()
    run_id = (await client.send(session, "hi"))["runId"]
    done = await client.completed(run_id)
    await barrier(client)
    assert done["finishReason"] == "end_turn" and done["text"] == "All good"
    assert "error" not in done and "foldedInto" not in done
    assert_runs_end_once(client.notes, [run_id])
    assert_seq_numbers(client.notes)
    assert client.types_of(run_id)[:2] == ["run_started", "message_created"]


async def test_provider_error_is_an_agent_error_then_run_complete_error(start, workspace: Path):
    client = await start({"model": scripted({"events": [{"text": "partial "}, {"error": "boom"}]})})
    session = await client.new_session()
    run_id = (await client.send(session, "hi"))["runId"]
    done = await client.completed(run_id)
    await barrier(client)
    assert_runs_end_once(client.notes, [run_id])
    kinds = client.types_of(run_id)
    assert kinds[-2:] == ["agent_error", "run_complete"]
    error = client.of_run(run_id)[-2]
    assert error["code"] == "internal" and "boom" in error["message"]
    assert error["retryable"] is False and error["willRetry"] is False
    assert done["finishReason"] == "error" and "boom" in done["error"]
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant"]
    assert finish_reason(messages[1]) == "error"


async def test_provider_error_after_a_tool_call_stores_an_error_result(start):
    client = await start({"model": scripted({"events": [
        {"toolCall": {"name": "ls", "input": {}}}, {"error": "stream broke"}]})})
    session = await client.new_session()
    run_id = (await client.send(session, "hi"))["runId"]
    done = await client.completed(run_id)
    await barrier(client)
    assert done["finishReason"] == "error"
    statuses = [n["toolCall"]["status"] for n in client.of_run(run_id) if n["type"] == "tool_call"]
    assert statuses == ["pending", "failed"]
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant", "tool"]
    assert finish_reason(messages[1]) == "error" and messages[2]["parts"][0]["isError"] is True
    assert_runs_end_once(client.notes, [run_id])


async def test_no_matching_script_response_names_prompt_and_step(start):
    client = await start({"model": scripted({"when": "expected words", "events": [{"text": "x"}]})})
    session = await client.new_session()
    run_id = (await client.send(session, "something else"))["runId"]
    done = await client.completed(run_id)
    [error] = [n for n in client.of_run(run_id) if n["type"] == "agent_error"]
    assert "something else" in error["message"] and "step 0" in error["message"]
    assert done["finishReason"] == "error"


async def test_retryable_provider_error_is_not_retried_by_scripted(start):
    client = await start({"model": scripted({"events": [{"error": "try later", "retryable": True}]})})
    session = await client.new_session()
    run_id = (await client.send(session, "hi"))["runId"]
    done = await client.completed(run_id)
    await barrier(client)
    errors = [n for n in client.of_run(run_id) if n["type"] == "agent_error"]
    assert [(e["retryable"], e["willRetry"]) for e in errors] == [(True, False)]
    assert done["finishReason"] == "error"
    assert_runs_end_once(client.notes, [run_id])


async def test_removing_the_workspace_cancels_its_run(start, workspace: Path):
    client = await start({"model": scripted(SLOW)})
    session = await client.new_session()
    run_id = (await client.send(session, "hi"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == run_id)
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[], removed=[
            types.WorkspaceFolder(uri=client.ws_uri, name=workspace.name)])))
    started = time.monotonic()
    done = await client.completed(run_id, timeout=5)
    assert time.monotonic() - started < 2
    assert done["finishReason"] == "canceled"
    assert "agent_error" not in client.types_of(run_id)
    # Closing flushes storage after the last run_complete; the workspace is gone once that is done.
    reason = await reason_when_closed(client, session)
    assert reason == "workspace_not_found"
    assert_runs_end_once(client.notes)
    stored = read_db(workspace)["messages"]
    assert roles(stored) == ["user", "assistant"] and finish_reason(stored[1]) == "canceled"


async def reason_when_closed(client, session: str, within: float = 3.0) -> str:
    """Send prompts until the closing workspace is closed (no notification marks that moment)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await client.send(session, "again")
        except JsonRpcException as exc:
            reason = exc.data["reason"] if exc.data else None
            if reason != "workspace_closing" or time.monotonic() > deadline:
                return reason
        else:
            raise AssertionError("a prompt to a removed workspace was accepted")
        await asyncio.sleep(0.05)


async def test_prompt_while_the_workspace_closes_gets_workspace_closing(start, workspace: Path):
    client = await start({"model": scripted(SLOW)})
    session = await client.new_session()
    run_id = (await client.send(session, "hi"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == run_id)
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[], removed=[
            types.WorkspaceFolder(uri=client.ws_uri, name=workspace.name)])))
    # Requests take effect in order: the removal is seen before this prompt.
    try:
        await client.send(session, "too late")
    except JsonRpcException as exc:
        assert exc.data["reason"] in ("workspace_closing", "workspace_not_found")
    else:
        raise AssertionError("a prompt to a removed workspace was accepted")
    await client.completed(run_id, timeout=5)


def test_shutdown_during_a_run_completes_it_before_the_reply(workspace: Path):
    raw = RawServer(workspace, {"model": scripted(SLOW)})
    try:
        session, run_id = raw_prompt(raw)
        queued = raw.request("agent/sendMessage", {"workspace": raw.uri, "sessionId": session,
                                                   "prompt": "queued behind"})["result"]
        assert queued["queued"] is True
        raw.read_until(note_of(run_id, "text_delta"))
        shutdown_id = raw.send_request("shutdown")
        reply = raw.read_until(lambda m: m.get("id") == shutdown_id and "method" not in m, timeout=8)
        assert reply.get("result", "missing") is None
        for ended in (run_id, queued["runId"]):
            completes = [m for m in raw.received if run_complete_of(ended)(m)]
            assert len(completes) == 1 and completes[0]["params"]["finishReason"] == "canceled"
            assert raw.received.index(completes[0]) < raw.received.index(reply)
        # After the reply every request but exit is refused.
        late = raw.request("agent/status", {"workspace": raw.uri, "sessionId": session})
        assert late["error"]["code"] == -32016 and late["error"]["data"]["reason"] == "server_shutting_down"
        late = raw.request("agent/sendMessage", {"workspace": raw.uri, "sessionId": session, "prompt": "x"})
        assert late["error"]["data"]["reason"] == "server_shutting_down"
        raw.notify("exit")
        assert raw.proc.wait(timeout=5) == 0
    finally:
        raw.close()
    stored = read_db(workspace)["messages"]
    assert roles(stored) == ["user", "assistant"] and finish_reason(stored[1]) == "canceled"


def test_end_of_input_during_a_run_exits_0_and_stores_it(workspace: Path):
    raw = RawServer(workspace, {"model": scripted(SLOW)})
    try:
        session, run_id = raw_prompt(raw, "remember me")
        raw.read_until(note_of(run_id, "text_delta"))
        started = time.monotonic()
        raw.proc.stdin.close()
        assert raw.proc.wait(timeout=2) == 0
        assert time.monotonic() - started < 2
        # What was written before exiting still includes the run's one run_complete.
        while raw.read_message(timeout=2) is not None:
            pass
        completes = [m["params"] for m in raw.received if run_complete_of(run_id)(m)]
        assert [c["finishReason"] for c in completes] == ["canceled"]
    finally:
        raw.close()
    again = RawServer(workspace, {"model": scripted(SLOW)})
    try:
        messages = again.request("session/messages", {"workspace": again.uri, "sessionId": session})["result"]["messages"]
    finally:
        again.close()
    assert roles(messages) == ["user", "assistant"]
    assert text(messages[0]) == "remember me"
    assert finish_reason(messages[1]) == "canceled"
    assert text(messages[1]) and "abcdefghijklmnopqrstuvwxyz".startswith(text(messages[1])[:26])


def test_exit_without_shutdown_exits_1(workspace: Path):
    raw = RawServer(workspace, {"model": scripted(say("hi"))})
    try:
        raw.notify("exit")
        assert raw.proc.wait(timeout=5) == 1
    finally:
        raw.close()


def test_shutdown_then_exit_exits_0(workspace: Path):
    raw = RawServer(workspace, {"model": scripted(say("hi"))})
    try:
        assert raw.request("shutdown")["result"] is None
        raw.notify("exit")
        assert raw.proc.wait(timeout=5) == 0
        assert raw.read_message(timeout=2) is None  # nothing after the shutdown reply
    finally:
        raw.close()
    assert read_db(workspace)["messages"] == []


def test_exit_without_shutdown_during_a_run_exits_1_and_stores_it(workspace: Path):
    raw = RawServer(workspace, {"model": scripted(SLOW)})
    try:
        session, run_id = raw_prompt(raw, "interrupted")
        raw.read_until(note_of(run_id, "text_delta"))
        raw.notify("exit")
        assert raw.proc.wait(timeout=3) == 1
    finally:
        raw.close()
    stored_messages = read_db(workspace)["messages"]
    assert roles(stored_messages) == ["user", "assistant"] and finish_reason(stored_messages[1]) == "canceled"


def test_end_of_input_with_a_pending_permission_exits_promptly(workspace: Path):
    view_outside = {"events": [{"toolCall": {"name": "view", "input": {"file_path": "/etc/hostname"}}}]}
    raw = RawServer(workspace, {"model": scripted(view_outside)},
                    capabilities={"experimental": {"crush": {"permissions": True}}})
    try:
        _session, run_id = raw_prompt(raw)
        raw.read_until(lambda m: m.get("method") == "agent/requestPermission")
        raw.proc.stdin.close()
        assert raw.proc.wait(timeout=2) == 0
        while raw.read_message(timeout=2) is not None:
            pass
        assert [m["params"]["finishReason"] for m in raw.received if run_complete_of(run_id)(m)] == ["canceled"]
    finally:
        raw.close()


def test_stdin_that_is_not_a_pipe_ends_at_once():
    proc = subprocess.Popen(SERVER_CMD, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=server_env())
    try:
        assert proc.wait(timeout=4) == 0
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
