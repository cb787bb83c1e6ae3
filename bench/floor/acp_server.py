"""S4 acp: an agent on the PyPI package `agent-client-protocol` (0.12.x), NDJSON over stdio.

ACP v1 holds `session/prompt` open until the turn ends: the agent streams N
`session/update` agent_message_chunk notifications, then answers the prompt with
stopReason end_turn.  The streamed text arrives in `initialize`'s `_meta.bench`
(ACP's extension point), in the same scripted shape the LSP-framed servers get in
initializationOptions.  The trivial request is the extension method `_agent/status`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    run_agent,
    update_agent_message_text,
)
from acp.schema import AgentCapabilities, Implementation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from floor_common import STATUS, script_chunks


class FloorAgent:
    def __init__(self) -> None:
        self.conn: Any = None
        self.ids = itertools.count(1)
        self.text, self.chunks = script_chunks(None)

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(
        self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None, **kwargs: Any
    ) -> InitializeResponse:
        bench = kwargs.get("bench")
        if bench is not None:
            self.text, self.chunks = script_chunks(bench)
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(),
            agent_info=Implementation(name="floor-acp", version="0"),
        )

    async def new_session(self, cwd: str, mcp_servers: Any = None, **kwargs: Any) -> NewSessionResponse:
        return NewSessionResponse(session_id=f"s{next(self.ids)}")

    async def prompt(self, prompt: Any, session_id: str, **kwargs: Any) -> PromptResponse:
        for chunk in self.chunks:
            # awaits the sender queue + write: at least one event-loop turn per chunk
            await self.conn.session_update(session_id, update_agent_message_text(chunk))
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        return None

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "agent/status":
            return STATUS
        from acp import RequestError

        raise RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(run_agent(FloorAgent()))


if __name__ == "__main__":
    main()
