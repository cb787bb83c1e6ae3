"""The `mcp` map of crush.json and initializationOptions, as Crush spells it.

    "mcp": {"<name>": {"type": "stdio" | "http" | "sse", "command", "args", "env",
                       "url", "headers", "timeout", "disabled", "enabled_tools", "disabled_tools"}}

initializationOptions.mcp wins over crush.json per server name (the whole
entry). `$VAR` / `${VAR}` in command, args, env, url and headers read the
environment; a header that expands to nothing is dropped (as in Crush). A bad
entry becomes a server in state `failed` that says why: it never stops the
other servers or the workspace.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from ..protocol.convert import STRICT, describe_structure_error
from ..settings.crush_json import expand_env

DEFAULT_TIMEOUT = 10.0  # seconds, Crush's default
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")  # what OpenAI and Anthropic accept in a tool name


@attrs.define
class ServerConfig:
    """One MCP server as configured (crush.json's snake_case spelling)."""

    name: str = ""
    type: Literal["stdio", "http", "sse"] = "stdio"
    command: str | None = None
    args: list[str] = attrs.Factory(list)
    env: dict[str, str] = attrs.Factory(dict)
    url: str | None = None
    headers: dict[str, str] = attrs.Factory(dict)
    timeout: float = DEFAULT_TIMEOUT
    disabled: bool = False
    enabled_tools: list[str] = attrs.Factory(list)
    disabled_tools: list[str] = attrs.Factory(list)
    # Set when the entry cannot be used: the server is reported failed with it.
    error: str | None = None

    def offers(self, tool: str) -> bool:
        """Whether the model may see the server's tool `tool`."""
        if self.enabled_tools and tool not in self.enabled_tools:
            return False
        return tool not in self.disabled_tools

    def tool_name(self, tool: str) -> str:
        """The model-visible name: Crush's `mcp_<server>_<tool>`, limited to what vendors accept."""
        return _TOOL_NAME.sub("_", f"mcp_{self.name}_{tool}")


def parse_server(name: str, raw: Any) -> ServerConfig:
    """One entry, expanded; a bad one comes back with `error` set."""
    if not isinstance(raw, dict):
        return ServerConfig(name=name, error="the entry must be an object")
    fields = {k: v for k, v in raw.items() if k in _FIELDS}  # oauth and the like: not supported, ignored
    fields.setdefault("type", "stdio")
    try:
        config = STRICT.structure({**fields, "name": name}, ServerConfig)
    except Exception as exc:  # noqa: BLE001 - any structure error is this entry's error
        kind = raw.get("type")
        return ServerConfig(name=name, type=kind if kind in ("stdio", "http", "sse") else "stdio",
                            error=f"invalid configuration: {describe_structure_error(exc)}")
    config.command = expand_env(config.command) if config.command else None
    config.args = [expand_env(a) for a in config.args]
    config.env = {k: expand_env(v) for k, v in config.env.items()}
    config.url = expand_env(config.url) if config.url else None
    config.headers = {k: v for k, v in ((k, expand_env(v).strip()) for k, v in config.headers.items()) if v}
    if config.timeout <= 0:
        config.timeout = DEFAULT_TIMEOUT
    if config.type == "stdio" and not config.command:
        config.error = "invalid configuration: a stdio server needs a command"
    elif config.type != "stdio" and not config.url:
        config.error = f"invalid configuration: an {config.type} server needs a url"
    return config


_FIELDS = frozenset(a.name for a in attrs.fields(ServerConfig)) - {"name", "error"}


def server_configs(crush_mcp: Any, init_mcp: Any) -> list[ServerConfig]:
    """Every configured server, crush.json's under initializationOptions' (by name), in name order."""
    entries: dict[str, Any] = {}
    for source in (crush_mcp, init_mcp):
        if isinstance(source, dict):
            entries.update(source)
    return [parse_server(name, entries[name]) for name in sorted(entries)]


__all__ = ["DEFAULT_TIMEOUT", "ServerConfig", "parse_server", "server_configs"]
