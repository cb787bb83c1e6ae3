"""Shared pieces of the MCP tests: server entries, waiting for a server's state, process checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.conftest import AgentClient, scripted

HERE = Path(__file__).parent
SERVER_WAIT = 30.0  # seconds: a real server's start-up on a loaded 2-core machine


def stdio(*args: str, **extra: Any) -> dict[str, Any]:
    """A stdio entry running this Python with `args` (a module's `-m` or a script of this folder)."""
    return {"type": "stdio", "command": sys.executable, "args": list(args), **extra}


def script(name: str, *args: str, **extra: Any) -> dict[str, Any]:
    return stdio(str(HERE / "servers" / name), *args, **extra)


def call_then_say(tool: str, arguments: dict[str, Any], after: str = "done") -> dict[str, Any]:
    """initializationOptions.model: call `tool` in the first step, say `after` in the second."""
    return scripted(
        {"step": 0, "events": [{"toolCall": {"name": tool, "input": arguments}}]},
        {"step": 1, "events": [{"text": after}]},
    )


def options(mcp: dict[str, Any], model: dict[str, Any] | None = None, mode: str = "allow",
            **permissions: Any) -> dict[str, Any]:
    return {"model": model or scripted({"events": [{"text": "hi"}]}), "mcp": mcp,
            "permissions": {"mode": mode, **permissions}}


def server_of(note: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in note.get("servers", []) if s["name"] == name), None)


async def wait_state(client: AgentClient, name: str, *states: str, timeout: float = SERVER_WAIT) -> dict[str, Any]:
    """The first announced state of server `name` that is one of `states` (as in mcp_updated)."""

    def matches(note: dict[str, Any]) -> bool:
        server = server_of(note, name) if note["type"] == "mcp_updated" else None
        return server is not None and server["state"] in states

    return server_of(await client.wait_for(matches, timeout), name)  # type: ignore[return-value]


async def servers(client: AgentClient) -> dict[str, dict[str, Any]]:
    result = await client.call("agent/mcpServers", {"workspace": client.ws_uri})
    return {s["name"]: s for s in result["servers"]}


async def run(client: AgentClient, prompt: str = "go", session: str | None = None) -> tuple[str, dict[str, Any]]:
    session = session or await client.new_session()
    accepted = await client.send(session, prompt)
    return accepted["runId"], await client.completed(accepted["runId"], timeout=SERVER_WAIT)


def tool_results(client: AgentClient, run_id: str) -> list[dict[str, Any]]:
    return [n for n in client.of_run(run_id) if n["type"] == "tool_result"]


def children(pid: int) -> set[int]:
    """The child processes of `pid`: crush-ls starts its stdio servers itself."""
    tasks = Path(f"/proc/{pid}/task")
    found: set[int] = set()
    for task in tasks.iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return {p for p in found if alive(p)}


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
