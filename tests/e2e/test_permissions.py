"""Permissions through the real protocol (PROTOCOL section 4).

A scripted model calls tools; the test client answers (or does not answer)
`agent/requestPermission`. Each decision must be announced with
`permission_requested` / `permission_resolved`, a denied call must not run
and must end the turn without another model call, and nothing outside the
workspace happens without a person's yes.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentClient, scripted
from tests.e2e.runs import assert_runs_end_once, barrier, stored

AFTER = "after the tools"


def write(rel: str, content: str = "new\n") -> dict[str, Any]:
    return {"name": "write", "input": {"file_path": rel, "content": content}}


def tools_then_text(*calls: dict[str, Any]) -> dict[str, Any]:
    """A model that calls `calls` in its first step and says AFTER in its second."""
    return scripted(
        {"step": 0, "events": [{"toolCall": call} for call in calls]},
        {"step": 1, "events": [{"text": AFTER}]},
    )


def options(model: dict[str, Any], mode: str = "ask", **permissions: Any) -> dict[str, Any]:
    return {"model": model, "permissions": {"mode": mode, **permissions}}


async def run(client: AgentClient, session: str | None = None, prompt: str = "go") -> tuple[str, dict[str, Any]]:
    """Send a prompt and wait for its run_complete; returns (run id, run_complete)."""
    session = session or await client.new_session()
    accepted = await client.send(session, prompt)
    return accepted["runId"], await client.completed(accepted["runId"])


def permission_notes(client: AgentClient, run_id: str) -> list[dict[str, Any]]:
    return [n for n in client.of_run(run_id) if n["type"].startswith("permission_")]


def decisions(client: AgentClient, run_id: str) -> list[str]:
    return [n["decision"] for n in client.of_run(run_id) if n["type"] == "permission_resolved"]


def statuses(client: AgentClient, run_id: str, call_id: str) -> list[str]:
    return [n["toolCall"]["status"] for n in client.of_run(run_id)
            if n["type"] == "tool_call" and n["toolCall"]["id"] == call_id]


def tool_results(client: AgentClient, run_id: str) -> list[dict[str, Any]]:
    return [n for n in client.of_run(run_id) if n["type"] == "tool_result"]


def real(path: Path) -> str:
    return os.path.realpath(path)


class Hanging:
    """A permission answer that never comes; records that the server withdrew the request."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.withdrawn = asyncio.Event()

    async def __call__(self, params: dict[str, Any]) -> Any:
        self.asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.withdrawn.set()  # the client's handler was cancelled by `$/cancelRequest`
            raise


async def assert_denied_turn(client: AgentClient, run_id: str, complete: dict[str, Any], session: str) -> None:
    """A denied call gets an error result and the turn ends end_turn without another model call."""
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True
    assert complete["finishReason"] == "end_turn"
    assert AFTER not in client.text_of(run_id)
    roles = [m["role"] for m in await stored(client, session)]
    assert roles == ["user", "assistant", "tool"], roles
    assert_runs_end_once(client.notes)


# ---------------------------------------------------------------------- a person answers
async def test_allowed_call_runs_after_a_complete_request(start, workspace):
    client = await start(options(tools_then_text(write("a.txt"))), permissions=True)
    session = await client.new_session()
    run_id, complete = await run(client, session)

    (request,) = client.permission_requests
    assert (request["workspace"], request["sessionId"], request["runId"]) == (client.ws_uri, session, run_id)
    permission = request["permission"]
    assert set(permission) == {"id", "toolCallId", "tool", "action", "path", "description", "input"}
    assert (permission["tool"], permission["action"]) == ("write", "write")
    assert permission["path"] == real(workspace / "a.txt")
    assert permission["input"] == write("a.txt")["input"]

    requested, resolved = permission_notes(client, run_id)
    assert requested == {**requested, "type": "permission_requested", "permission": permission}
    assert {k: resolved[k] for k in ("permissionId", "toolCallId", "decision")} == {
        "permissionId": permission["id"], "toolCallId": permission["toolCallId"], "decision": "allow"}
    assert statuses(client, run_id, permission["toolCallId"]) == [
        "pending", "awaiting_permission", "running", "completed"]
    assert (workspace / "a.txt").read_text() == "new\n"
    assert complete["finishReason"] == "end_turn" and complete["text"] == AFTER
    assert_runs_end_once(client.notes)


async def test_allow_session_covers_the_same_directory_of_the_same_session(start, workspace):
    (workspace / "sub").mkdir()
    model = tools_then_text(write("a.txt"), write("b.txt"), write("sub/c.txt"))
    client = await start(options(model), permissions=True)
    client.permission_answer = {"decision": "allow_session"}
    session = await client.new_session()
    run_id, _ = await run(client, session)
    # a.txt asks; b.txt (same directory) is covered by the grant; sub/c.txt asks again.
    assert [r["permission"]["path"] for r in client.permission_requests] == [
        real(workspace / "a.txt"), real(workspace / "sub/c.txt")]
    assert decisions(client, run_id) == ["allow_session", "allow", "allow_session"]
    assert all((workspace / name).exists() for name in ("a.txt", "b.txt", "sub/c.txt"))

    # Another session is asked again.
    client.permission_answer = {"decision": "allow"}
    other_run, _ = await run(client)
    assert len(client.permission_requests) == 5
    assert decisions(client, other_run) == ["allow", "allow", "allow"]


async def test_denied_call_does_not_run_and_ends_the_turn(start, workspace):
    client = await start(options(tools_then_text(write("a.txt"))), permissions=True)
    client.permission_answer = {"decision": "deny"}
    session = await client.new_session()
    run_id, complete = await run(client, session)
    assert decisions(client, run_id) == ["deny"]
    assert not (workspace / "a.txt").exists()
    call_id = client.permission_requests[0]["permission"]["toolCallId"]
    assert statuses(client, run_id, call_id) == ["pending", "awaiting_permission", "failed"]
    await assert_denied_turn(client, run_id, complete, session)


async def test_a_denied_call_skips_the_rest_of_its_step(start, workspace):
    client = await start(options(tools_then_text(write("a.txt"), write("b.txt"))), permissions=True)
    client.permission_answer = {"decision": "deny"}
    run_id, complete = await run(client)
    assert len(client.permission_requests) == 1
    assert not (workspace / "a.txt").exists() and not (workspace / "b.txt").exists()
    assert [r["isError"] for r in tool_results(client, run_id)] == [True, True]
    assert complete["finishReason"] == "end_turn" and AFTER not in client.text_of(run_id)


async def test_unanswered_request_times_out_and_is_withdrawn(start, workspace):
    client = await start(options(tools_then_text(write("a.txt")), timeoutMs=300), permissions=True)
    client.permission_answer = hanging = Hanging()
    session = await client.new_session()
    run_id, complete = await run(client, session)
    assert decisions(client, run_id) == ["timeout"]
    await asyncio.wait_for(hanging.withdrawn.wait(), 5)
    assert not (workspace / "a.txt").exists()
    await assert_denied_turn(client, run_id, complete, session)


async def test_cancel_while_pending_withdraws_the_request(start, workspace):
    client = await start(options(tools_then_text(write("a.txt"))), permissions=True)
    client.permission_answer = hanging = Hanging()
    session = await client.new_session()
    accepted = await client.send(session, "go")
    requested = await client.wait_for(lambda n: n["type"] == "permission_requested")
    await asyncio.wait_for(hanging.asked.wait(), 5)
    status = await client.call("agent/status", {"workspace": client.ws_uri, "sessionId": session})
    assert status["pendingPermissions"] == [requested["permission"]]

    assert (await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session}))["canceled"] == 1
    complete = await client.completed(accepted["runId"])
    assert complete["finishReason"] == "canceled"
    assert decisions(client, accepted["runId"]) == ["canceled"]
    await asyncio.wait_for(hanging.withdrawn.wait(), 5)
    assert not (workspace / "a.txt").exists()
    status = await client.call("agent/status", {"workspace": client.ws_uri, "sessionId": session})
    assert status["pendingPermissions"] == []
    assert_runs_end_once(client.notes)


def fails(params: dict[str, Any]) -> Any:
    raise RuntimeError("the client broke while answering")  # the server gets an error response


GARBAGE = [{"decision": "yes"}, {"decision": "ALLOW"}, {"decision": True}, {"decision": ["allow"]},
           {"decision": {"allow": True}}, {}, "allow", 42, None, ["allow"], fails]


async def test_any_other_answer_is_a_deny(start, workspace):
    client = await start(options(tools_then_text(write("a.txt"))), permissions=True)
    for answer in GARBAGE:
        client.permission_answer = answer
        session = await client.new_session()
        run_id, complete = await run(client, session)
        assert decisions(client, run_id) == ["deny"], answer
        assert not (workspace / "a.txt").exists(), answer
        await assert_denied_turn(client, run_id, complete, session)
    assert len(client.permission_requests) == len(GARBAGE)


# ---------------------------------------------------------------------- settings
async def test_allowed_tools_allow_without_asking_but_announce(start, workspace):
    model = tools_then_text(write("a.txt"), {"name": "bash", "input": {"command": "touch made-by-bash"}})
    client = await start(options(model, allowedTools=["write", "bash:execute"]), permissions=True)
    run_id, complete = await run(client)
    assert client.permission_requests == []
    assert decisions(client, run_id) == ["allow", "allow"]
    assert [n["type"] for n in permission_notes(client, run_id)] == ["permission_requested", "permission_resolved"] * 2
    assert (workspace / "a.txt").exists() and (workspace / "made-by-bash").exists()
    assert complete["text"] == AFTER


async def test_calls_that_need_no_decision_announce_nothing(start, workspace):
    (workspace / "notes.txt").write_text("hello\n")
    model = tools_then_text(
        {"name": "view", "input": {"file_path": "notes.txt"}},
        {"name": "grep", "input": {"pattern": "hello"}},
        {"name": "bash", "input": {"command": "ls"}},
        {"name": "todos", "input": {"todos": [{"content": "x", "status": "pending"}]}},
    )
    client = await start(options(model), permissions=True)
    run_id, complete = await run(client)
    assert client.permission_requests == [] and permission_notes(client, run_id) == []
    assert [r["isError"] for r in tool_results(client, run_id)] == [False] * 4
    assert complete["text"] == AFTER


@pytest.mark.parametrize("mode", ["ask", "allow", "deny"])
async def test_a_client_without_the_capability(mode, start, workspace):
    """ask: denied without asking; allow: allowed; deny: denied. Outside: always denied."""
    outside = workspace.parent / "outside"
    outside.mkdir()
    model = scripted(
        {"when": "inside", "step": 0, "events": [{"toolCall": write("a.txt")}]},
        {"when": "outside", "step": 0, "events": [{"toolCall": write("../outside/x.txt")}]},
        {"step": 1, "events": [{"text": AFTER}]},
    )
    client = await start(options(model, mode, allowedTools=["write"] if mode == "allow" else []))
    inside_run, inside_complete = await run(client, prompt="inside")
    outside_run, outside_complete = await run(client, prompt="outside")
    await barrier(client)

    expected = "allow" if mode == "allow" else "deny"
    assert decisions(client, inside_run) == [expected]
    assert (workspace / "a.txt").exists() is (mode == "allow")
    assert (inside_complete["text"] == AFTER) is (mode == "allow")
    assert decisions(client, outside_run) == ["deny"]
    assert not (outside / "x.txt").exists()
    assert outside_complete["finishReason"] == "end_turn" and AFTER not in client.text_of(outside_run)
    assert client.permission_requests == []


async def test_outside_the_workspace_a_person_is_asked_even_in_mode_allow(start, workspace):
    outside = workspace.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s\n")
    os.symlink(outside, workspace / "door")
    model = tools_then_text(
        {"name": "view", "input": {"file_path": "door/secret.txt"}},
        write("../outside/new.txt"),
        write(str(outside / "abs.txt")),
    )
    client = await start(options(model, "allow", allowedTools=["view", "write"]), permissions=True)
    client.permission_answer = lambda params: {
        "decision": "deny" if params["permission"]["path"].endswith("abs.txt") else "allow"}
    run_id, complete = await run(client)
    assert [r["permission"]["path"] for r in client.permission_requests] == [
        real(outside / "secret.txt"), real(outside / "new.txt"), real(outside / "abs.txt")]
    assert decisions(client, run_id) == ["allow", "allow", "deny"]
    assert (outside / "new.txt").exists() and not (outside / "abs.txt").exists()
    assert complete["finishReason"] == "end_turn" and AFTER not in client.text_of(run_id)
