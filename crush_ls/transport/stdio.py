"""Serving one client over stdio or TCP: the non-blocking writer and the read side.

The read side hands each message to its `Peer` inside `data_received`, as
the event loop sees the input: a request is answered before the timers and
tasks that became ready in the same loop turn (a prompt is acknowledged at
once even while many sessions stream; pygls' own reader, a thread pool with
three hops per message, took 17 ms under load: research/pygls.md section 8).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable, Coroutine
from typing import Any, BinaryIO, Protocol

from . import envelope
from .framing import ContentLength, Decoder, FrameError, dumps, max_frame_from_env

log = logging.getLogger(__name__)


BEHIND = 256 << 10  # bytes written and not yet read by the client above which the writer is "behind"
WRITE_TURNS = 4  # loop turns whose output goes out in one write
JOIN_BYTES = 32 << 10  # ...unless this much is pending already
LOOP_ENV = "CRUSH_LS_LOOP"  # "asyncio": the standard library's event loop even when uvloop is installed


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """`asyncio.run(main)` on uvloop's event loop (libuv, as node's) when it is installed, else on
    asyncio's. The server spends most of its time in the loop's own machinery (callbacks, timers,
    pipe writes): on uvloop a streamed notification costs ~20 % less server CPU and a prompt is
    acknowledged ~20 % sooner (bench/floor_bench.py). `CRUSH_LS_LOOP=asyncio` keeps asyncio's."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if os.environ.get(LOOP_ENV, "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # not built for this platform: asyncio's loop serves the same
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class Backpressure:
    """Whether the client reads what is written: `behind` while more than BEHIND bytes wait for it.

    asyncio's transports report it (pause_writing/resume_writing); whoever
    produces droppable output (stream deltas) checks `behind` and holds it back,
    and gets `on_caught_up` called once the client has read most of it.
    """

    def __init__(self) -> None:
        self.behind = False
        self.on_caught_up: list[Callable[[], None]] = []

    def pause_writing(self) -> None:
        if not self.behind:
            log.info("the client is not reading: holding back stream deltas")
        self.behind = True

    def resume_writing(self) -> None:
        self.behind = False
        for callback in list(self.on_caught_up):
            callback()


class _PipeProtocol(asyncio.Protocol):
    def __init__(self, backpressure: Backpressure) -> None:
        self._backpressure = backpressure

    def pause_writing(self) -> None:
        self._backpressure.pause_writing()

    def resume_writing(self) -> None:
        self._backpressure.resume_writing()


class Peer(Protocol):
    """What a connection serves: the server side of the protocol."""

    def connected(self, writer: Writer) -> None:
        """The writer every answer and notification goes through."""

    def handle(self, message: dict[str, Any]) -> None:
        """One well-formed JSON-RPC message; raises SystemExit(code) to end the connection."""

    async def disconnected(self) -> None:
        """Input ended or the client said exit: end what runs, bounded in time."""


class StdoutWriter:
    """Collects what WRITE_TURNS turns of the event loop write and sends it in one write.

    Under load many notifications are written per loop iteration; one write
    instead of one per message keeps the loop free to read the next request.
    A run streaming alone writes one delta per loop turn: a write (and a
    wake-up of the client) for each cost more than the delta itself, so the
    output of a few turns goes together (a few loop turns late: microseconds
    when the loop is idle). Answers go out at once (`write_now`), behind it.
    Order is kept: everything goes through one buffer. With a pipe transport
    the write never blocks the loop, even when the client stops reading.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._transport: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None  # asking for it each loop turn costs a getpid()
        self.backpressure = Backpressure()

    async def attach(self) -> None:
        """Write through a non-blocking pipe transport when stdout is a pipe."""
        self._loop = asyncio.get_running_loop()
        try:
            self._transport, _ = await self._loop.connect_write_pipe(
                lambda: _PipeProtocol(self.backpressure), self._stream)
            self._transport.set_write_buffer_limits(high=BEHIND, low=BEHIND // 4)
        except (ValueError, OSError):  # a regular file or a terminal: blocking writes
            self._transport = None

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size > BEHIND:  # a burst: hand it over now, so that `behind` tells the truth
            self.flush()
            return
        if self._scheduled:
            return
        loop = self._loop
        if loop is None or not loop.is_running():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (start-up or teardown): write through
                self.flush()
                return
        loop.call_soon(self._after_turn, loop, 1)
        self._scheduled = True

    def _after_turn(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        if self._pending and turns < WRITE_TURNS and self._pending_size < JOIN_BYTES:
            loop.call_soon(self._after_turn, loop, turns + 1)
            return
        self._scheduled = False
        self.flush()

    def write_now(self, data: bytes) -> None:
        """Write `data` behind what is pending, in one write now (an answer: no loop turn waited for)."""
        self._pending.append(data)
        self.flush()

    def flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
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
        deadline = asyncio.get_running_loop().time() + timeout
        transport = self._transport
        while transport is not None and not transport.is_closing() and transport.get_write_buffer_size():
            if asyncio.get_running_loop().time() > deadline:
                log.warning("the client did not read the last %d bytes", transport.get_write_buffer_size())
                return
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.flush()


class SocketWriter:
    """The writer interface over a TCP transport."""

    def __init__(self, transport: asyncio.WriteTransport, backpressure: Backpressure) -> None:
        self._transport = transport
        self._transport.set_write_buffer_limits(high=BEHIND, low=BEHIND // 4)
        self.backpressure = backpressure

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        pass  # closed when the connection ends


class Connection(asyncio.Protocol):
    """Decodes the input and hands each message to the peer as soon as it is read.

    Bytes that are not a frame, bodies that are not JSON-RPC and handlers that
    raise are answered here; the connection keeps serving. `ended` resolves to
    None at end of input, or to the exit code when the peer raises SystemExit.
    """

    def __init__(self, peer: Peer, writer: Writer | None = None, decoder: Decoder | None = None) -> None:
        self._peer = peer
        self._writer = writer
        self._decoder: Decoder = decoder or ContentLength(max_frame_from_env())
        self.ended: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    def set_writer(self, writer: Writer) -> None:
        self._writer = writer
        self._peer.connected(writer)

    def send(self, message: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.write(self._decoder.frame(dumps(message)))

    def data_received(self, data: bytes) -> None:
        if self.ended.done():
            return
        for item in self._decoder.feed(data):
            try:
                if isinstance(item, FrameError):
                    self.send(envelope.frame_error_response(item))
                else:
                    self._receive(item)
            except SystemExit as exit_request:  # the peer's `exit`
                self._finish(int(exit_request.code or 0))
                return

    def _receive(self, body: bytes) -> None:
        message, answer = envelope.parse(body)
        if answer is not None:
            self.send(answer)
        if message is None:
            return
        try:
            self._peer.handle(message)
        except Exception as exc:
            log.exception("handling %s failed", message.get("method") or "a response")
            if (answer := envelope.internal_error(message, exc)) is not None:
                self.send(answer)

    def eof_received(self) -> bool:
        self._finish(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(None)

    def _finish(self, code: int | None) -> None:
        if not self.ended.done():
            self.ended.set_result(code)


async def _run(peer: Peer, connection: Connection) -> int:
    code = await connection.ended
    # End of input, or `exit` (without `shutdown` the runs still need ending and storing).
    await peer.disconnected()
    return 0 if code is None else code


def _pollable(stream: BinaryIO) -> bool:
    mode = os.fstat(stream.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stream.isatty()


def _feed_from_file(loop: asyncio.AbstractEventLoop, connection: Connection, stream: BinaryIO) -> None:
    while chunk := stream.read1(1 << 16) if hasattr(stream, "read1") else stream.read(1 << 16):
        loop.call_soon_threadsafe(connection.data_received, chunk)
    loop.call_soon_threadsafe(connection.connection_lost, None)


def serve_stdio(peer: Peer, stdin: BinaryIO, stdout: BinaryIO, decoder: Decoder | None = None) -> int:
    """Serve `peer` on stdio; `decoder` is the framing (default Content-Length; `JsonLines` for ACP)."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        writer = StdoutWriter(stdout)
        await writer.attach()
        connection = Connection(peer, decoder=decoder)
        connection.set_writer(writer)
        if _pollable(stdin):
            await loop.connect_read_pipe(lambda: connection, stdin)
        else:  # a regular file or /dev/null (epoll refuses both): read it in a thread
            loop.run_in_executor(None, _feed_from_file, loop, connection, stdin)
        try:
            return await _run(peer, connection)
        finally:
            await writer.drain(0.4)

    try:
        return run_loop(main())
    except BrokenPipeError:
        log.error("the client closed the connection")
        return 0


class _TcpConnection(Connection):
    """A connection that takes the first client of a listening socket and refuses the others."""

    def __init__(self, peer: Peer, served: asyncio.Future[_TcpConnection]) -> None:
        super().__init__(peer)
        self._served = served
        self._backpressure = Backpressure()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._served.done():  # one client per process
            transport.close()
            return
        self.transport = transport
        self.set_writer(SocketWriter(transport, self._backpressure))  # type: ignore[arg-type]
        self._served.set_result(self)

    # The socket's flow control is reported to its protocol: this connection.
    def pause_writing(self) -> None:
        self._backpressure.pause_writing()

    def resume_writing(self) -> None:
        self._backpressure.resume_writing()


def serve_tcp(peer: Peer, host: str, port: int) -> int:
    """Serve one client on TCP; the process ends with that connection."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        served: asyncio.Future[_TcpConnection] = loop.create_future()
        tcp = await loop.create_server(lambda: _TcpConnection(peer, served), host, port)
        log.info("serving on %s", ", ".join(str(s.getsockname()) for s in tcp.sockets))
        async with tcp:
            connection = await served
            code = await _run(peer, connection)
            if connection.transport is not None:
                connection.transport.close()
            return code

    return run_loop(main())
