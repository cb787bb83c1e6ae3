"""`crush-ls acp`: session/cancel and session/request_permission (options, memory, outcomes)."""

from __future__ import annotations

import asyncio

from .harness import agent, folded, say, tool


def write(path: str, content: str = "x\n", **extra):
    return tool("write", {"file_path": path, "content": content}, **extra)


async def test_cancel_during_a_tool_call_with_a_permission_pending(tmp_path) -> None:
    release = asyncio.Event()

    async def hold(_call):
        await release.wait()  # the person has not answered yet
        return "cancelled"  # what an ACP client answers once the turn is cancelled

    async with agent(tmp_path, write("a.txt", step=0), say("never", step=1)) as h:
        h.client.permission_answer = hold
        await h.initialize()
        sid = await h.new_session()
        turn = asyncio.ensure_future(h.prompt(sid, "write a"))
        await h.client.wait_for(lambda: h.client.permission_requests)
        request = h.client.permission_requests[0]
        assert [o.kind for o in request.options] == ["allow_once", "allow_always", "reject_once", "reject_always"]
        assert request.tool_call.kind == "edit" and request.tool_call.content[0].type == "diff"
        asked = next(m for m in h.client.received if m.get("method") == "session/request_permission")
        await h.conn.cancel(session_id=sid)
        assert (await turn).stop_reason == "cancelled"
        withdrawn = [m for m in h.client.received if m.get("method") == "$/cancel_request"]
        assert [m["params"] for m in withdrawn] == [{"requestId": asked["id"]}]  # the question is withdrawn
        release.set()
        call = next(iter(folded(h.client.of(sid))["calls"].values()))
        assert call["status"] == "failed"  # canceled: ACP has no such status
        assert not (tmp_path / "a.txt").exists()


async def test_cancel_ends_the_running_prompt_and_the_one_queued_behind_it(tmp_path) -> None:
    responses = ({"when": "slow", "events": [{"text": "s", "sleepMs": 5000}]}, say("late", when="queued"),
                 say("after", when="later"))
    async with agent(tmp_path, *responses) as h:
        await h.initialize()
        sid = await h.new_session()
        running = asyncio.ensure_future(h.prompt(sid, "slow"))
        await h.client.wait_for(lambda: h.client.of(sid, "agent_message_chunk"))
        queued = asyncio.ensure_future(h.prompt(sid, "queued"))
        await asyncio.sleep(0.1)  # accepted behind the running one
        await h.conn.cancel(session_id=sid)
        assert (await running).stop_reason == "cancelled"
        assert (await queued).stop_reason == "cancelled"  # accepted before the cancel: Crush ends it too
        assert (await h.prompt(sid, "later")).stop_reason == "end_turn"  # accepted after: untouched
        assert "late" not in folded(h.client.of(sid))["text"]


async def test_allow_always_is_remembered_for_the_session(tmp_path) -> None:
    responses = (write("d/one.txt", step=0, when="one"), say("ok", step=1, when="one"),
                 write("d/two.txt", step=0, when="two"), say("ok", step=1, when="two"))
    async with agent(tmp_path, *responses) as h:
        h.client.permission_answer = "allow_always"
        await h.initialize()
        sid = await h.new_session()
        (tmp_path / "d").mkdir()
        assert (await h.prompt(sid, "one")).stop_reason == "end_turn"
        h.client.permission_answer = "reject_once"  # would deny if crush-ls asked again
        assert (await h.prompt(sid, "two")).stop_reason == "end_turn"
        assert len(h.client.permission_requests) == 1
        assert (tmp_path / "d" / "two.txt").exists()
        other = await h.new_session()  # another session asks again
        assert (await h.prompt(other, "two")).stop_reason == "end_turn"
        assert len(h.client.permission_requests) == 2


async def test_reject_always_is_remembered_and_reject_once_is_not(tmp_path) -> None:
    responses = (write("a.txt", when="first"), write("b.txt", when="second"), write("c.txt", when="third"))
    async with agent(tmp_path, *responses) as h:
        await h.initialize()
        sid = await h.new_session()
        h.client.permission_answer = "reject_once"
        assert (await h.prompt(sid, "first")).stop_reason == "end_turn"  # a denial ends the turn
        h.client.permission_answer = "reject_always"
        assert (await h.prompt(sid, "second")).stop_reason == "end_turn"
        h.client.permission_answer = "allow_once"  # not asked: rejected always
        assert (await h.prompt(sid, "third")).stop_reason == "end_turn"
        assert len(h.client.permission_requests) == 2
        assert not any((tmp_path / n).exists() for n in ("a.txt", "b.txt", "c.txt"))
        calls = folded(h.client.of(sid))["calls"].values()
        assert [c["status"] for c in calls] == ["failed", "failed", "failed"]


async def test_a_cancelled_outcome_is_a_deny_that_does_not_cancel_the_run(tmp_path) -> None:
    async with agent(tmp_path, write("a.txt", step=0), say("fine", step=1)) as h:
        h.client.permission_answer = "cancelled"
        await h.initialize()
        sid = await h.new_session()
        assert (await h.prompt(sid, "go")).stop_reason == "end_turn"
        assert not (tmp_path / "a.txt").exists()
        call = next(iter(folded(h.client.of(sid))["calls"].values()))
        assert call["status"] == "failed" and "Permission denied" in call["content"][0]["content"]["text"]


async def test_permission_modes_from_config_options_and_legacy_modes(tmp_path) -> None:
    responses = (
        write("a.txt", step=0, when="edit"), say("ok", step=1, when="edit"),
        tool("bash", {"command": "true"}, step=0, when="run"), say("ok", step=1, when="run"),
    )
    async with agent(tmp_path, *responses) as h:
        await h.initialize()
        sid = await h.new_session()
        changed = await h.conn.set_config_option(config_id="mode", session_id=sid, value="allow_edits")
        assert next(o for o in changed.config_options if o.id == "mode").current_value == "allow_edits"
        assert h.client.of(sid, "current_mode_update")[-1].current_mode_id == "allow_edits"
        assert (await h.prompt(sid, "edit")).stop_reason == "end_turn"
        assert (tmp_path / "a.txt").exists() and h.client.permission_requests == []
        assert (await h.prompt(sid, "run")).stop_reason == "end_turn"
        assert len(h.client.permission_requests) == 1  # commands still ask
        await h.conn.set_session_mode(session_id=sid, mode_id="allow_all")
        update = h.client.of(sid, "config_option_update")[-1]
        assert next(o for o in update.config_options if o.id == "mode").current_value == "allow_all"
        assert (await h.prompt(sid, "run")).stop_reason == "end_turn"
        assert len(h.client.permission_requests) == 1


async def test_yolo_is_the_default_mode_and_a_session_switched_to_ask_asks(tmp_path) -> None:
    responses = (write("a.txt", step=0, when="one"), say("ok", step=1, when="one"),
                 write("b.txt", step=0, when="two"), say("ok", step=1, when="two"))
    async with agent(tmp_path, *responses, args=("--yolo",)) as h:
        await h.initialize()
        created = await h.conn.new_session(cwd=str(tmp_path), mcp_servers=[])
        assert created.modes.current_mode_id == "allow_all"
        assert (await h.prompt(created.session_id, "one")).stop_reason == "end_turn"
        assert h.client.permission_requests == []
        await h.conn.set_config_option(config_id="mode", session_id=created.session_id, value="ask")
        assert (await h.prompt(created.session_id, "two")).stop_reason == "end_turn"
        assert len(h.client.permission_requests) == 1
