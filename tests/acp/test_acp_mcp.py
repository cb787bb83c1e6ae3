"""`crush-ls acp`: the mcpServers of session/new, including the odd shapes clients send."""

from __future__ import annotations

import json
import sys

from crush_ls.acp.content import tolerant_setup

from .harness import agent, say


def test_odd_mcp_server_lists_are_cleaned_not_refused() -> None:
    message = {"method": "session/new", "params": {"cwd": "/w", "mcpServers": {}}}  # Lua's empty table
    assert tolerant_setup(message)["params"]["mcpServers"] == []
    servers = [
        {"name": "files", "command": "mcp-files", "env": {"TOKEN": "t"}},  # env as a map, no args
        {"name": "web", "url": "http://127.0.0.1:1/mcp", "headers": [{"name": "A", "value": "b"}]},
        {"name": "", "command": "nameless"}, {"command": "x"}, "junk", 7,
    ]
    cleaned = tolerant_setup({"method": "session/load", "params": {"mcpServers": servers}})["params"]["mcpServers"]
    assert cleaned == [
        {"name": "files", "command": "mcp-files", "args": [], "env": [{"name": "TOKEN", "value": "t"}]},
        {"name": "web", "url": "http://127.0.0.1:1/mcp", "type": "http", "headers": [{"name": "A", "value": "b"}]},
    ]
    other = {"method": "session/prompt", "params": {"mcpServers": {}}}
    assert tolerant_setup(other) == {"method": "session/prompt", "params": {"mcpServers": {}}}


async def test_session_new_takes_stdio_and_http_servers_in_any_shape(tmp_path) -> None:
    import acp

    async with agent(tmp_path, say("hi")) as h:
        await h.initialize()
        stdio = acp.schema.McpServerStdio(name="echo", command=sys.executable, args=["-c", "pass"],
                                          env=[acp.schema.EnvVariable(name="K", value="v")])
        http = acp.schema.HttpMcpServer(type="http", name="web", url="http://127.0.0.1:9/mcp", headers=[])
        created = await h.conn.new_session(cwd=str(tmp_path), mcp_servers=[stdio, http])
        assert (await h.prompt(created.session_id, "hi")).stop_reason == "end_turn"
    # a raw line with CodeCompanion's shapes
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crush_ls", "acp", "--model", "echo", cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}},
        {"jsonrpc": "2.0", "id": 2, "method": "session/new",
         "params": {"cwd": str(tmp_path), "mcpServers": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "session/new",
         "params": {"cwd": str(tmp_path), "mcpServers": [{"name": "x", "command": "y", "env": {}}]}},
    ]
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    answers = {}
    async with asyncio.timeout(20):
        while len(answers) < 3:
            message = json.loads(await proc.stdout.readline())
            if "id" in message:
                answers[message["id"]] = message
    proc.stdin.close()
    await proc.wait()
    assert "sessionId" in answers[2]["result"] and "sessionId" in answers[3]["result"]


async def test_an_mcp_stdio_server_of_session_new_serves_that_session_only(tmp_path) -> None:
    import acp

    from .harness import folded, tool

    responses = (tool("mcp_time_get_current_time", {"timezone": "UTC"}, step=0), say("done", step=1))
    time_server = acp.schema.McpServerStdio(name="time", command=sys.executable,
                                            args=["-m", "mcp_server_time", "--local-timezone", "UTC"], env=[])
    async with agent(tmp_path, *responses) as h:
        await h.initialize()
        with_server = (await h.conn.new_session(cwd=str(tmp_path), mcp_servers=[time_server])).session_id
        assert (await h.prompt(with_server, "what time is it")).stop_reason == "end_turn"
        call = next(iter(folded(h.client.of(with_server))["calls"].values()))
        assert call["title"] == "mcp_time_get_current_time" and call["kind"] == "other"
        assert call["status"] == "completed", call
        assert '"timezone": "UTC"' in call["content"][0]["content"]["text"]
        assert h.client.permission_requests[0].tool_call.raw_input == {"timezone": "UTC"}

        without = await h.new_session()  # same workspace, no servers: not its tool
        assert (await h.prompt(without, "what time is it")).stop_reason == "end_turn"
        call = next(iter(folded(h.client.of(without))["calls"].values()))
        assert call["status"] == "failed" and "Unknown tool" in call["content"][0]["content"]["text"]
