"""The ACP connection: crush_ls.transport's stdio connection (newline-delimited) in front of the `acp` SDK.

The SDK's own reader ends the connection on a line that is JSON but not an
object (`[1]`, `7`), and an editor such as Zed never restarts a dead agent.
So the SDK never reads stdin: `transport.stdio.Connection` with the
`JsonLines` framing splits the input and `transport.envelope` answers what is
not JSON-RPC; `AcpPeer.handle` then refuses what the SDK would choke on
(`sdk_problem`) and hands the rest to the SDK's `Connection` through
`SdkTransport`, the SDK's message-level `Transport` seam.

Output goes through one writer, in the order it is produced: the updates of a
turn are always written before the `session/prompt` answer that follows them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from ..transport import envelope
from ..transport.framing import JsonLines
from ..transport.stdio import Writer

log = logging.getLogger(__name__)

# The client-to-agent notifications of ACP v1 (`_`-prefixed extensions go to the SDK too).
SDK_NOTIFICATIONS = frozenset({"session/cancel"})


def sdk_problem(message: dict[str, Any]) -> str | None:
    """Why a JSON-RPC message would upset the SDK's dispatcher, or None."""
    if "method" not in message and "id" not in message:
        return "neither a request, a notification nor a response"
    if "method" not in message and "result" not in message and "error" not in message:
        return "a response needs `result` or `error`"
    if "params" in message and not isinstance(message["params"], (dict, list, type(None))):
        return "`params` must be an object or an array"
    method = message.get("method")
    if "id" not in message and isinstance(method, str) and method not in SDK_NOTIFICATIONS and method[:1] != "_":
        return f"unknown notification {method!r}"  # the SDK would log a traceback for it
    return None


def encode(message: dict[str, Any]) -> bytes:
    # default=str: an SDK error answer may carry a non-JSON detail (a validation error's context).
    return JsonLines.frame(json.dumps(message, separators=(",", ":"), default=str).encode())


class SdkTransport:
    """The SDK's `Transport`: checked messages in, messages out through the connection's writer."""

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        self._write = write
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def put(self, message: dict[str, Any] | None) -> None:
        self._inbox.put_nowait(message)

    async def send(self, message: dict[str, Any]) -> None:
        self._write(message)

    async def receive(self) -> dict[str, Any] | None:
        return await self._inbox.get()

    async def close(self) -> None:
        pass


class AcpPeer:
    """`transport.stdio.Peer` for ACP: the SDK's agent-side connection over the backend."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._writer: Writer | None = None
        self.transport = SdkTransport(self.write)
        self.agent: Any = None
        self.connection: Any = None

    def write(self, message: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.write(encode(message))

    def connected(self, writer: Writer) -> None:
        from ..startup import loading

        with loading("acp"):  # the SDK's models and the agent: most of the start-up
            from acp.agent.connection import AgentSideConnection

            from .agent import AcpAgent
            from .content import tolerant_setup

        self._writer = writer
        self._prepare = tolerant_setup
        self.agent = AcpAgent(self._settings, self.write)
        self.connection = AgentSideConnection(self.agent, self.transport, use_unstable_protocol=True,  # resume, close
                                              observers=[self.agent.observe])

    def handle(self, message: dict[str, Any]) -> None:
        why = sdk_problem(message)
        if why is None:
            self.transport.put(self._prepare(message))
        elif "method" in message and "id" not in message:
            log.warning("dropped a malformed notification: %s", why)
        else:
            msg_id = message.get("id")
            self.write(envelope.error_response(msg_id, envelope.INVALID_REQUEST, f"Invalid request: {why}."))

    async def disconnected(self) -> None:
        """End of input: the runs end and are stored, then the SDK's connection closes."""
        from . import EOF_CLOSE_TIMEOUT

        self.transport.put(None)
        if self.agent is not None:
            await self.agent.backend.close_all(EOF_CLOSE_TIMEOUT)
            await self.agent.close_sessions()
        if self.connection is not None:
            await self.connection.close()
