"""The `mcp` map: crush.json and initializationOptions, $VAR expansion, per-server errors."""

from __future__ import annotations

import json

from crush_ls.mcp.config import DEFAULT_TIMEOUT, parse_server, server_configs
from tests.conftest import scripted
from tests.mcp.helpers import servers, stdio, wait_state


def test_variables_expand_and_an_empty_header_is_dropped(monkeypatch):
    monkeypatch.setenv("MCP_TOKEN", "secret")
    monkeypatch.setenv("MCP_HOST", "example.test")
    monkeypatch.delenv("MCP_UNSET", raising=False)
    config = parse_server("web", {
        "type": "http", "url": "https://$MCP_HOST/mcp",
        "headers": {"Authorization": "Bearer ${MCP_TOKEN}", "X-Empty": "$MCP_UNSET"},
    })
    assert config.error is None
    assert config.url == "https://example.test/mcp"
    assert config.headers == {"Authorization": "Bearer secret"}
    stdio_config = parse_server("s", {"command": "$MCP_HOST-bin", "args": ["--token=$MCP_TOKEN"],
                                      "env": {"TOKEN": "$MCP_TOKEN"}})
    assert (stdio_config.type, stdio_config.command) == ("stdio", "example.test-bin")
    assert stdio_config.args == ["--token=secret"] and stdio_config.env == {"TOKEN": "secret"}
    assert stdio_config.timeout == DEFAULT_TIMEOUT


def test_bad_entries_say_why():
    assert "one of" in parse_server("a", {"type": "websocket", "url": "x"}).error
    assert "needs a command" in parse_server("b", {"type": "stdio"}).error
    assert "needs a url" in parse_server("c", {"type": "http"}).error
    assert "needs a url" in parse_server("c", {"type": "sse"}).error
    assert "expected array" in parse_server("d", {"command": "x", "args": "--flag"}).error
    assert "must be an object" in parse_server("e", ["x"]).error
    assert parse_server("f", {"command": "x", "oauth": True}).error is None  # unsupported keys are ignored


def test_initialization_options_win_per_server_name():
    configs = server_configs({"a": {"command": "from-file"}, "b": {"command": "b"}},
                             {"a": {"command": "from-options"}})
    assert [(c.name, c.command) for c in configs] == [("a", "from-options"), ("b", "b")]


def test_filters_and_names():
    config = parse_server("my.server", {"command": "x", "enabled_tools": ["a", "b"], "disabled_tools": ["b"]})
    assert [config.offers(t) for t in ("a", "b", "c")] == [True, False, False]
    assert config.tool_name("do it") == "mcp_my_server_do_it"  # vendors accept [A-Za-z0-9_-] only


async def test_crush_json_servers_and_bad_entries_are_reported_and_the_workspace_works(start, workspace):
    (workspace / "crush.json").write_text(json.dumps({"mcp": {
        "time": stdio("-m", "mcp_server_time"),
        "nocmd": {"type": "stdio"},
        "weird": {"type": "websocket", "url": "ws://127.0.0.1:1"},
        "off": {**stdio("-m", "mcp_server_time"), "disabled": True},
        "replaced": {"type": "http"},
    }}))
    client = await start({"model": scripted({"events": [{"text": "still here"}]}),
                          "mcp": {"replaced": stdio("-m", "mcp_server_time")}})
    listed = await servers(client)  # before any server connected: configuration errors are known at once
    assert listed["nocmd"]["state"] == "failed" and "needs a command" in listed["nocmd"]["error"]
    assert listed["weird"]["state"] == "failed" and "websocket" in listed["weird"]["error"]
    assert listed["off"] == {"name": "off", "type": "stdio", "state": "disabled", "error": None, "restarts": 0,
                             "tools": []}
    assert listed["replaced"]["type"] == "stdio"
    session = await client.new_session()
    accepted = await client.send(session, "hello")  # a prompt does not wait for the servers
    assert (await client.completed(accepted["runId"]))["text"] == "still here"
    assert (await wait_state(client, "time", "connected"))["tools"]
    assert (await wait_state(client, "replaced", "connected"))["tools"]
