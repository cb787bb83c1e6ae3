"""The MCP servers an ACP client passes in `session/new|load|resume`, for that session only.

Each session gets its own `mcp.McpManager` over the servers it was given
(stdio and http, in crush.json's spelling once `content.server_config` has
made `env`/`headers` maps); their tools join the session's tools as
`mcp_<server>_<tool>`, under the same permission rules. A session setup
answers once every server has connected or failed (bounded by the servers'
timeouts), so the first prompt already has the tools.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

ENTRY_KEYS = ("type", "command", "args", "env", "url", "headers")


def crush_entry(server: dict[str, Any]) -> dict[str, Any]:
    return {"type": "stdio", **{k: server[k] for k in ENTRY_KEYS if k in server}}


class SessionServers:
    def __init__(self, servers: list[dict[str, Any]], root: Path) -> None:
        from ..mcp import McpManager
        from ..mcp.config import parse_server

        configs = [parse_server(s["name"], crush_entry(s)) for s in servers]
        self._timeout = max((c.timeout for c in configs), default=0.0)
        self._settled = asyncio.Event()
        self.manager = McpManager(configs, root, self._changed)
        self.manager.start()
        self._changed({})

    def _changed(self, _body: dict[str, Any]) -> None:
        from ..mcp.manager import STARTING

        if all(server.state != STARTING for server in self.manager.servers.values()):
            self._settled.set()

    async def ready(self) -> None:
        """Every server connected or failed, or its timeout passed (a slow server joins later)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), self._timeout)

    def tools(self) -> dict[str, Any]:
        return self.manager.tools()

    async def close(self) -> None:
        await self.manager.close()
