"""A small asyncio JSON-RPC 2.0 client with LSP framing (`Content-Length` headers).

It is deliberately independent of pygls: the terminal client must start fast,
and it doubles as the reference for anyone scripting the server from another
language. One `Connection` owns a reader and a writer; `serve()` reads until
end of input, resolving responses, handing notifications to `on_notification`
and answering server-to-client requests with the handlers in `request_handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..transport.framing import ContentLength, FrameError, encode

log = logging.getLogger(__name__)

METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
SERVER_FRAME_LIMIT = 1 << 40  # the client trusts its server: a long session's history may be large

NotificationHandler = Callable[[str, Any], None]
RequestHandler = Callable[[Any], Awaitable[Any]]


class RpcError(Exception):
    """An error response: `reason` is the server's stable `data.reason` (PROTOCOL section 5)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    @property
    def reason(self) -> str | None:
        return self.data.get("reason") if isinstance(self.data, dict) else None


class ConnectionClosed(Exception):
    """The server closed its output (it exited or crashed) before answering."""


async def read_messages(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """Every framed message until end of input (bytes that are not a frame are logged and skipped)."""
    decoder = ContentLength(max_frame=SERVER_FRAME_LIMIT)
    while chunk := await reader.read(1 << 16):
        for item in decoder.feed(chunk):
            if isinstance(item, FrameError):
                log.warning("the server sent something that is not a frame: %s", item.message)
            else:
                yield json.loads(item)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[object, asyncio.Future[Any]] = {}  # by id (whatever JSON came back)
        self._served: dict[Any, asyncio.Task[None]] = {}  # server requests being answered
        self._closed = False
        self.on_notification: NotificationHandler = lambda method, params: None
        self.request_handlers: dict[str, RequestHandler] = {}

    # -- sending --------------------------------------------------------------

    def _write(self, message: dict[str, Any]) -> None:
        if self._closed or self._writer.is_closing():
            raise ConnectionClosed("the server is gone")
        self._writer.write(encode({"jsonrpc": "2.0", **message}))

    async def request(self, method: str, params: Any = None) -> Any:
        """Send a request and wait for its result; raises RpcError on an error response."""
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            self._write({"id": msg_id, "method": method, "params": params})
            await self._writer.drain()
            return await future
        finally:
            self._pending.pop(msg_id, None)

    async def notify(self, method: str, params: Any = None) -> None:
        self._write({"method": method, "params": params})
        await self._writer.drain()

    def close_output(self) -> None:
        """End the server's input (it then cleans up and exits)."""
        if not self._writer.is_closing():
            self._writer.close()

    # -- receiving ------------------------------------------------------------

    async def serve(self) -> None:
        """Dispatch incoming messages until the server closes its output."""
        try:
            async for message in read_messages(self._reader):
                self._dispatch(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionClosed("the server exited before answering"))
            for task in self._served.values():
                task.cancel()

    def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            self._resolve(message)
        elif "id" in message:
            self._start_answering(message["id"], method, message.get("params"))
        elif method == "$/cancelRequest":
            task = self._served.get((message.get("params") or {}).get("id"))
            if task is not None:
                task.cancel()  # the server withdrew its request (e.g. a permission timed out)
        else:
            try:
                self.on_notification(method, message.get("params"))
            except Exception:  # a bug in a handler must not stop the reading
                log.exception("handling %s failed", method)

    def _resolve(self, message: dict[str, Any]) -> None:
        future = self._pending.get(message.get("id"))
        if future is None or future.done():
            return
        error = message.get("error")
        if error is not None:
            future.set_exception(RpcError(error.get("code", 0), error.get("message", ""), error.get("data")))
        else:
            future.set_result(message.get("result"))

    def _start_answering(self, msg_id: Any, method: str, params: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(msg_id, method, params))
        self._served[msg_id] = task
        task.add_done_callback(lambda _: self._served.pop(msg_id, None))

    async def _answer(self, msg_id: Any, method: str, params: Any) -> None:
        handler = self.request_handlers.get(method)
        try:
            if handler is None:
                reply = {"error": {"code": METHOD_NOT_FOUND, "message": f"{method} is not handled"}}
            else:
                reply = {"result": await handler(params)}
        except asyncio.CancelledError:
            reply = {"error": {"code": REQUEST_CANCELLED, "message": "request cancelled"}}
        except Exception as exc:  # a handler bug must not take the connection down
            log.exception("handling %s failed", method)
            reply = {"error": {"code": INTERNAL_ERROR, "message": str(exc)}}
        with contextlib.suppress(ConnectionClosed):  # nobody to answer any more
            self._write({"id": msg_id, **reply})
