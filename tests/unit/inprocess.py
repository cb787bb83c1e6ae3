"""A crush-ls server in this process, driven through its real connection with framed bytes.

Used where a test must look inside the server (pygls' tables) after driving it
through the protocol; everything else goes through a child process (tests/raw.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from crush_ls.server import CrushServer
from crush_ls.transport.framing import ContentLength, FrameError, encode
from crush_ls.transport.stdio import Connection


class Capture:
    """The connection's writer: decodes what the server writes and wakes whoever waits for an answer."""

    def __init__(self) -> None:
        self._decoder = ContentLength(max_frame=1 << 40)
        self.messages: list[dict[str, Any]] = []
        self.waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}

    def write(self, data: bytes) -> None:
        for body in self._decoder.feed(data):
            assert not isinstance(body, FrameError), body
            message = json.loads(body)
            self.messages.append(message)
            future = self.waiting.pop(message.get("id"), None) if "method" not in message else None
            if future is not None and not future.done():
                future.set_result(message)

    def close(self) -> None:
        pass


class InProcessServer:
    def __init__(self) -> None:
        self.server = CrushServer()
        self.out = Capture()
        self.connection = Connection(self.server)
        self.connection.set_writer(self.out)
        self._next = 0

    def feed(self, *messages: dict[str, Any]) -> None:
        self.connection.data_received(b"".join(encode(m) for m in messages))

    def send(self, method: str, params: Any = None) -> asyncio.Future[dict[str, Any]]:
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.out.waiting[self._next] = future
        self.feed({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        return future

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        return await asyncio.wait_for(self.send(method, params), 10)

    async def initialize(self, folder: Path, options: dict[str, Any]) -> None:
        reply = await self.request("initialize", {"capabilities": {}, "initializationOptions": options,
                                                  "workspaceFolders": [{"uri": folder.as_uri(), "name": "ws"}]})
        assert "result" in reply, reply
        self.feed({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    async def close(self) -> None:
        await self.server.disconnected()
