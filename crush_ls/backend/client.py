"""What the backend needs from the transport that serves it (LSP framing or ACP)."""

from __future__ import annotations

from typing import Any, Protocol

from ..protocol.capabilities import ClientCapabilities
from ..protocol.errors import ClientDeclined

__all__ = ["Client", "ClientCapabilities", "ClientDeclined", "WorkspaceAsker"]


class Client(Protocol):
    """What the backend needs from the transport.

    A client may also have `files` (`tools.base.Files`): the file tools then read
    and write through it (the ACP adapter, when the editor serves `fs/*`).
    """

    # What the client declared in `initialize` (all false until then, and for ACP).
    capabilities: ClientCapabilities

    def send(self, body: dict[str, Any]) -> None:
        """Send one `agent/notification` (the transport numbers it)."""

    def can_ask(self) -> bool:
        """The client declared it answers `agent/requestPermission`."""

    async def ask(self, params: dict[str, Any]) -> Any:
        """Send `agent/requestPermission`; cancelling the await withdraws it."""

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """Send a server-to-client request and return its result.

        Raises `ClientDeclined` when the client answers with an error or cancels it,
        `TimeoutError` when no answer came within `timeout` seconds (the request is
        then withdrawn with `$/cancelRequest`, as when the await is cancelled).
        """


class WorkspaceAsker:
    """The permission asker of one workspace: adds the workspace to the request."""

    def __init__(self, client: Client, uri: str) -> None:
        self._client = client
        self._uri = uri

    def can_ask(self) -> bool:
        return self._client.can_ask()

    async def ask(self, params: dict[str, Any]) -> Any:
        return await self._client.ask({"workspace": self._uri, **params})
