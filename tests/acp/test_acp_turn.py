"""`crush-ls acp`: initialize, session/new, a full turn's updates, stop reasons, queue, malformed input."""

from __future__ import annotations

import asyncio
import json
import sys

import acp
import pytest

from .harness import TURN, agent, folded, say, tool


async def test_initialize_advertises_v1_and_the_real_capabilities(tmp_path) -> None:
    async with agent(tmp_path, args=("--model", "echo")) as h:
        init = await h.conn.initialize(protocol_version=65535)  # a version we do not speak: we say 1
        assert init.protocol_version == 1
        assert init.agent_info.name == "crush-ls" and init.agent_info.version
        caps = init.agent_capabilities
        assert caps.load_session is True
        assert caps.prompt_capabilities.embedded_context is True
        assert caps.prompt_capabilities.image is False  # echo takes no images
        assert caps.mcp_capabilities.http is True
        sessions = caps.session_capabilities
        assert sessions.list is not None and sessions.resume is not None and sessions.close is not None
        assert init.auth_methods == []


async def test_a_full_turn_streams_text_thoughts_a_diff_a_plan_and_usage(tmp_path) -> None:
    async with agent(tmp_path, *TURN) as h:
        await h.initialize()
        created = await h.conn.new_session(cwd=str(tmp_path), mcp_servers=[])
        sid = created.session_id
        assert {o.id for o in created.config_options} == {"model", "mode"}
        assert created.modes.current_mode_id == "ask"

        answer = await h.prompt(sid, "make hello.py")
        assert answer.stop_reason == "end_turn"
        assert (tmp_path / "hello.py").read_text() == "print('hi')\n"

        updates = h.client.of(sid)
        shown = folded(updates)
        assert shown["thought"] == "The user wants a file."
        assert shown["text"] == "Writing it.Done."
        assert len(h.client.of(sid, "agent_message_chunk")) >= 3  # streamed in pieces
        write_call, todos_call = shown["calls"].values()
        assert write_call["kind"] == "edit" and write_call["status"] == "completed"
        assert write_call["title"] == "Write hello.py"
        assert write_call["locations"] == [{"path": str(tmp_path / "hello.py")}]
        assert write_call["raw_input"] == {"file_path": "hello.py", "content": "print('hi')\n"}
        assert write_call["content"] == [{"type": "diff", "path": str(tmp_path / "hello.py"),
                                          "new_text": "print('hi')\n"}]
        assert todos_call["kind"] == "think"
        assert shown["plan"] == [{"content": "Write hello.py", "priority": "medium", "status": "completed", "field_meta": None},
                                 {"content": "Run it", "priority": "medium", "status": "pending", "field_meta": None}]

        # tool_call first, then updates: pending -> in_progress -> completed with content
        write_id = next(iter(shown["calls"]))
        statuses = [(u.session_update, u.status) for u in updates
                    if getattr(u, "tool_call_id", None) == write_id and u.status]
        assert statuses[0] == ("tool_call", "pending")
        assert ("tool_call_update", "in_progress") in statuses and statuses[-1] == ("tool_call_update", "completed")

        usage = h.client.of(sid, "usage_update")[-1]
        assert usage.used == 205 and usage.cost.currency == "USD"
        info = h.client.of(sid, "session_info_update")
        assert info and info[0].title == "make hello.py"
        commands = h.client.of(sid, "available_commands_update")
        assert [c.name for c in commands[0].available_commands] == ["summarize"]
        assert h.client.permission_requests[0].tool_call.kind == "edit"  # asked once, for the write


async def test_bash_output_is_text_content_and_runs_locally(tmp_path) -> None:
    responses = (tool("bash", {"command": "echo from-bash"}, step=0), say("ok", step=1))
    async with agent(tmp_path, *responses, args=("--yolo",)) as h:
        await h.initialize()
        sid = await h.new_session()
        assert (await h.prompt(sid, "run")).stop_reason == "end_turn"
        call = next(iter(folded(h.client.of(sid))["calls"].values()))
        assert call["kind"] == "execute" and call["title"] == "echo from-bash"
        assert call["status"] == "completed"
        assert "from-bash" in call["content"][0]["content"]["text"]
        assert h.client.permission_requests == []  # --yolo: allowed inside the workspace


@pytest.mark.parametrize(("finish", "stop"), [("max_tokens", "max_tokens"), ("content_filter", "refusal")])
async def test_stop_reasons_are_mapped_from_run_complete(tmp_path, finish, stop) -> None:
    async with agent(tmp_path, {"events": [{"text": "x"}, {"finish": finish}]}) as h:
        await h.initialize()
        sid = await h.new_session()
        assert (await h.prompt(sid, "go")).stop_reason == stop


async def test_the_step_cap_answers_max_turn_requests(tmp_path) -> None:
    async with agent(tmp_path, tool("todos", {"todos": []})) as h:  # a tool call at every step
        await h.initialize()
        sid = await h.new_session()
        assert (await h.prompt(sid, "loop", timeout=60)).stop_reason == "max_turn_requests"


async def test_a_provider_error_is_a_json_rpc_error_after_the_updates(tmp_path) -> None:
    async with agent(tmp_path, {"events": [{"text": "partial"}, {"error": "upstream broke"}]}) as h:
        await h.initialize()
        sid = await h.new_session()
        with pytest.raises(acp.RequestError) as failure:
            await h.prompt(sid, "go")
        assert "upstream broke" in str(failure.value)
        assert failure.value.data == {"reason": "internal"}
        assert folded(h.client.of(sid))["text"] == "partial"  # sent before the answer


async def test_a_prompt_sent_while_busy_queues_and_answers_for_its_own_run(tmp_path) -> None:
    responses = (
        {"when": "first", "events": [{"text": "one", "delayMs": 300}]},
        {"when": "second", "events": [{"text": "two"}]},
    )
    async with agent(tmp_path, *responses) as h:
        await h.initialize()
        sid = await h.new_session()
        first = asyncio.ensure_future(h.prompt(sid, "first"))
        await h.client.wait_for(lambda: h.client.of(sid, "session_info_update"))  # the first run started
        second = asyncio.ensure_future(h.prompt(sid, "second"))
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()
        assert (await first).stop_reason == "end_turn"
        text_when_first_answered = folded(h.client.of(sid))["text"]
        assert text_when_first_answered.startswith("one")
        assert (await second).stop_reason == "end_turn"
        assert folded(h.client.of(sid))["text"] == "onetwo"


async def test_unknown_session_is_an_error_and_the_agent_keeps_serving(tmp_path) -> None:
    async with agent(tmp_path, say("hi")) as h:
        await h.initialize()
        with pytest.raises(acp.RequestError) as failure:
            await h.prompt("no-such-session", "hi")
        assert failure.value.data["reason"] == "session_not_found"
        sid = await h.new_session()
        assert (await h.prompt(sid, "hi")).stop_reason == "end_turn"


async def test_twenty_malformed_lines_are_answered_and_a_valid_request_follows(tmp_path) -> None:
    malformed = [b"[1]", b"7", b"\"text\"", b"null", b"not json", b"{\"foo\":\"bar\"}", b"{\"jsonrpc\":\"2.0\"}",
                 b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"initialize\"}", b"{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"x\"}",
                 b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":5}", b"[]", b"{", b"}", b"true",
                 b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"session/prompt\",\"params\":7}",
                 b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"session/new\",\"params\":{\"cwd\":5}}",
                 b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"no/such\"}", b"{\"jsonrpc\":\"2.0\",\"id\":6}",
                 b"\xff\xfe", b"[{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"initialize\"}]"]
    assert len(malformed) == 20
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crush_ls", "acp", "--model", "echo", cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    valid = {"jsonrpc": "2.0", "id": 99, "method": "initialize", "params": {"protocolVersion": 1}}
    proc.stdin.write(b"\n".join(malformed) + b"\n" + json.dumps(valid).encode() + b"\n")
    await proc.stdin.drain()
    answers = []
    async with asyncio.timeout(15):
        while not any(a.get("id") == 99 for a in answers):
            line = await proc.stdout.readline()
            assert line, "crush-ls acp ended"
            answers.append(json.loads(line))
    proc.stdin.close()
    assert await asyncio.wait_for(proc.wait(), 5) == 0
    errors = [a for a in answers if "error" in a]
    assert len(errors) == 20  # every malformed line is answered
    assert all(isinstance(e["error"]["code"], int) and e["error"]["message"] for e in errors)
    assert answers[-1]["result"]["protocolVersion"] == 1


async def test_prompt_content_links_embedded_resources_and_images(tmp_path) -> None:
    from acp import schema as s

    async with agent(tmp_path, {"events": [{"echo": True}]}) as h:
        await h.initialize()
        sid = await h.new_session()
        blocks = [
            acp.text_block("look at"),
            s.ResourceContentBlock(type="resource_link", name="main.py", uri=(tmp_path / "main.py").as_uri()),
            s.EmbeddedResourceContentBlock(type="resource", resource=s.TextResourceContents(
                uri=(tmp_path / "notes.md").as_uri(), mime_type="text/markdown", text="# unsaved notes")),
            s.ImageContentBlock(type="image", mime_type="image/png", data="iVBORw0KGgo="),
        ]
        answer = await asyncio.wait_for(h.conn.prompt(session_id=sid, prompt=blocks), 15)
        assert answer.stop_reason == "end_turn"
        assert folded(h.client.of(sid))["text"] == "look at\n@main.py"  # echo: the prompt's text
    async with agent(tmp_path, say("x")) as h:
        await h.initialize()
        await h.conn.load_session(cwd=str(tmp_path), session_id=sid, mcp_servers=[])
        user = "".join(u.content.text for u in h.client.of(sid, "user_message_chunk"))
        assert "@main.py" in user
        assert "<file path='notes.md'>\n# unsaved notes\n</file>" in user  # embedded context is an attachment
