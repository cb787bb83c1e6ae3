"""`crush-ls acp`: session/load (replay), session/list, session/resume, session/close, models."""

from __future__ import annotations

import asyncio
import json

import acp
import pytest

from .harness import TURN, agent, folded, say


async def test_load_replays_what_was_streamed_in_a_new_process(tmp_path) -> None:
    async with agent(tmp_path, *TURN) as h:
        await h.initialize()
        sid = await h.new_session()
        assert (await h.prompt(sid, "make hello.py")).stop_reason == "end_turn"
        streamed = folded(h.client.of(sid))
    async with agent(tmp_path, *TURN) as h:
        await h.initialize()
        loaded = await h.conn.load_session(cwd=str(tmp_path), session_id=sid, mcp_servers=[])
        updates = h.client.of(sid)  # all of them arrived before the answer
        assert {o.id for o in loaded.config_options} == {"model", "mode"}
        assert [u.content.text for u in updates if u.session_update == "user_message_chunk"] == ["make hello.py"]
        replayed = folded(updates)
        assert replayed == streamed
        assert [c["status"] for c in replayed["calls"].values()] == ["completed", "completed"]
        assert h.client.of(sid, "usage_update")[-1].used == 205
        assert h.client.of(sid, "session_info_update")[-1].title == "make hello.py"
        assert h.client.of(sid, "available_commands_update")
        await asyncio.sleep(0.2)
        assert h.client.of(sid) == updates  # nothing after the load answer
        # the loaded session goes on with its history
        assert (await h.prompt(sid, "make hello.py again")).stop_reason == "end_turn"


async def test_list_filters_by_cwd_with_titles_and_update_times(tmp_path) -> None:
    other = tmp_path / "other"
    root = tmp_path / "ws"
    other.mkdir()
    root.mkdir()
    async with agent(root, say("hi")) as h:
        await h.initialize()
        first = await h.new_session()
        await h.prompt(first, "first prompt")
        second = await h.new_session()
        await h.prompt(second, "second prompt")
        listed = (await h.conn.list_sessions(cwd=str(root))).sessions
        assert [(s.session_id, s.title, s.cwd) for s in listed] == [
            (second, "second prompt", str(root)), (first, "first prompt", str(root))]
        assert all(s.updated_at.endswith("Z") for s in listed)
        assert (await h.conn.list_sessions(cwd=str(other))).sessions == []
        assert (await h.conn.list_sessions(cwd=str(tmp_path / "missing"))).sessions == []
        assert {s.session_id for s in (await h.conn.list_sessions()).sessions} == {first, second}


async def test_resume_does_not_replay_and_the_session_goes_on(tmp_path) -> None:
    async with agent(tmp_path, say("hello")) as h:
        await h.initialize()
        sid = await h.new_session()
        await h.prompt(sid, "hi")
    async with agent(tmp_path, say("again")) as h:
        await h.initialize()
        resumed = await h.conn.resume_session(cwd=str(tmp_path), session_id=sid)
        assert resumed.modes.current_mode_id == "ask"
        assert (await h.prompt(sid, "more")).stop_reason == "end_turn"
        kinds = [u.session_update for u in h.client.of(sid)]
        assert "user_message_chunk" not in kinds
        assert folded(h.client.of(sid))["text"] == "again"  # only the new turn


async def test_close_cancels_the_running_prompt(tmp_path) -> None:
    async with agent(tmp_path, {"events": [{"text": "s", "sleepMs": 5000}]}) as h:
        await h.initialize()
        sid = await h.new_session()
        running = asyncio.ensure_future(h.prompt(sid, "slow"))
        await h.client.wait_for(lambda: h.client.of(sid, "agent_message_chunk"))
        await h.conn.close_session(session_id=sid)
        assert (await running).stop_reason == "cancelled"
        seen = len(h.client.of(sid))
        with pytest.raises(acp.RequestError):  # closed: load or resume it first
            await h.prompt(sid, "slow")
        assert len(h.client.of(sid)) == seen  # nothing more of a closed session
        # closed is not deleted: it can be loaded again
        await h.conn.load_session(cwd=str(tmp_path), session_id=sid, mcp_servers=[])
        assert folded(h.client.of(sid)[seen:])["calls"] == {}


async def test_unknown_session_load_is_an_error(tmp_path) -> None:
    async with agent(tmp_path, say("hi")) as h:
        await h.initialize()
        try:
            await h.conn.load_session(cwd=str(tmp_path), session_id="nope", mcp_servers=[])
        except acp.RequestError as exc:
            assert exc.data["reason"] == "session_not_found"
        else:
            raise AssertionError("loading an unknown session succeeded")


async def test_model_option_lists_agent_models_and_load_restores_the_last_used(tmp_path) -> None:
    (tmp_path / "crush.json").write_text(json.dumps({"providers": {"fake": {
        "type": "openai-compat", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-test",
        "models": [{"id": "gpt-test", "name": "Fake GPT", "context_window": 8192}]}}}))
    async with agent(tmp_path, say("scripted answer")) as h:
        await h.initialize()
        used = await h.new_session()
        assert (await h.prompt(used, "hi")).stop_reason == "end_turn"  # with the scripted model
        created = await h.conn.new_session(cwd=str(tmp_path), mcp_servers=[])
        model = next(o for o in created.config_options if o.id == "model")
        assert model.category == "model" and model.current_value == "scripted:scripted"
        assert {o.value for o in model.options} >= {"scripted:scripted", "openai:gpt-test"}
        changed = await h.conn.set_config_option(config_id="model", session_id=created.session_id,
                                                 value="openai:gpt-test")
        assert next(o for o in changed.config_options if o.id == "model").current_value == "openai:gpt-test"
        loaded = await h.conn.load_session(cwd=str(tmp_path), session_id=used, mcp_servers=[])
        assert next(o for o in loaded.config_options if o.id == "model").current_value == "scripted:scripted"
        assert (await h.prompt(used, "again")).stop_reason == "end_turn"  # the fake model would fail
