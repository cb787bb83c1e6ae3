"""Newline-delimited JSON-RPC on stdio, checked before the `acp` SDK sees a message.

The SDK's own reader ends the connection on a line that is JSON but not an
object (`[1]`, `7`), and an editor such as Zed never restarts a dead agent.
So every line is parsed and checked here: a malformed one is answered with a
JSON-RPC error (or dropped, for a notification) and the agent keeps serving;
only well-formed messages reach the SDK's `Connection`, through `LineTransport`
(the SDK's message-level `Transport` seam).

Output goes through one writer, in the order it is produced: the updates of a
turn are always written before the `session/prompt` answer that follows them.
Messages written in one turn of the event loop leave in one write.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Callable
from typing import Any, BinaryIO

log = logging.getLogger(__name__)


def _valid_id(msg_id: Any) -> bool:
    return msg_id is None or (isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool))


def problem(data: Any) -> str | None:
    """Why a parsed line is not a JSON-RPC 2.0 message the SDK can take, or None."""
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        return "expected a JSON-RPC 2.0 object"
    if "method" in data and not isinstance(data["method"], str):
        return "`method` must be a string"
    if "id" in data and not _valid_id(data["id"]):
        return "`id` must be a string or an integer"
    if "method" not in data and "id" not in data:
        return "neither a request, a notification nor a response"
    if "method" not in data and "result" not in data and "error" not in data:
        return "a response needs `result` or `error`"
    if "params" in data and not isinstance(data["params"], (dict, list, type(None))):
        return "`params` must be an object or an array"
    return None


def error_answer(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def check_line(line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(message for the SDK, None) or (None, the error to answer, if any)."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return None, error_answer(None, -32700, f"Parse error: the line is not JSON ({type(exc).__name__}).")
    why = problem(data)
    if why is None:
        return data, None
    if isinstance(data, dict) and isinstance(data.get("method"), str) and "id" not in data:
        log.warning("dropped a malformed notification: %s", why)  # notifications are never answered
        return None, None
    msg_id = data.get("id") if isinstance(data, dict) else None
    return None, error_answer(msg_id if _valid_id(msg_id) else None, -32600, f"Invalid request: {why}.")


class Writer:
    """One ordered output: whole messages, one per line, one write per loop turn."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._transport: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []
        self._scheduled = False

    async def attach(self) -> None:
        """Write through a non-blocking pipe transport when stdout is a pipe."""
        try:
            self._transport, _ = await asyncio.get_running_loop().connect_write_pipe(asyncio.Protocol, self._stream)
        except (ValueError, OSError):  # a regular file or a terminal: blocking writes
            self._transport = None

    def write(self, message: dict[str, Any]) -> None:
        # default=str: an SDK error answer may carry a non-JSON detail (a validation error's context)
        line = json.dumps(message, separators=(",", ":"), default=str)
        self._pending.append(line.encode() + b"\n")
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        data = b"".join(self._pending)
        self._pending.clear()
        if not data:
            return
        try:
            if self._transport is not None:
                if not self._transport.is_closing():
                    self._transport.write(data)
                return
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            log.debug("client gone; dropped %d bytes of output", len(data))

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until everything written has left the process."""
        self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        transport = self._transport
        while transport is not None and not transport.is_closing() and transport.get_write_buffer_size():
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.01)


class LineTransport:
    """The SDK's `Transport`: checked messages in, messages out through the writer."""

    def __init__(self, writer: Writer, prepare: Callable[[dict[str, Any]], dict[str, Any]] = lambda m: m) -> None:
        self._writer = writer
        self._prepare = prepare  # adjusts a checked message before the SDK validates it
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def feed(self, line: bytes) -> None:
        message, answer = check_line(line)
        if answer is not None:
            self._writer.write(answer)
        if message is not None:
            self._inbox.put_nowait(self._prepare(message))

    def end(self) -> None:
        self._inbox.put_nowait(None)

    async def send(self, message: dict[str, Any]) -> None:
        self._writer.write(message)

    async def receive(self) -> dict[str, Any] | None:
        return await self._inbox.get()

    async def close(self) -> None:
        self._writer.flush()


class LineReader(asyncio.Protocol):
    """Splits the input into lines; blank lines are skipped. `ended` resolves at end of input."""

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._on_line = on_line
        self._buffer = bytearray()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            line = bytes(self._buffer[start:end]).strip()
            start = end + 1
            if line:
                self._on_line(line)
        del self._buffer[:start]

    def eof_received(self) -> bool:
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.ended.done():
            return
        rest = bytes(self._buffer).strip()
        self._buffer.clear()
        if rest:  # a last line without its newline
            self._on_line(rest)
        self.ended.set_result(None)


def _pollable(stream: BinaryIO) -> bool:
    mode = os.fstat(stream.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stream.isatty()


def _feed_from_file(loop: asyncio.AbstractEventLoop, reader: LineReader, stream: BinaryIO) -> None:
    while chunk := stream.read(1 << 16):
        loop.call_soon_threadsafe(reader.data_received, chunk)
    loop.call_soon_threadsafe(reader.connection_lost, None)


async def read_stdin(stdin: BinaryIO, reader: LineReader) -> None:
    """Feed `reader` from stdin: a pipe through the loop, a regular file through a thread."""
    loop = asyncio.get_running_loop()
    if _pollable(stdin):
        await loop.connect_read_pipe(lambda: reader, stdin)
    else:  # epoll refuses regular files and /dev/null
        loop.run_in_executor(None, _feed_from_file, loop, reader, stdin)
