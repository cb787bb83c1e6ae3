"""The pygls server: registers handlers, translates errors, owns the connection.

Handlers are thin: parse params, call the backend, map `CrushError` to a
JSON-RPC error with `data.reason`. Handlers run synchronously when their
message arrives, so requests take effect in arrival order and a
`agent/sendMessage` response is written before any notification of its run;
where the backend returns an awaitable, the handler yields it to pygls and
answers when it resolves.

Stdin is read with an asyncio pipe reader instead of pygls' thread-pool
reader: a prompt is acknowledged in about a millisecond even while many
sessions stream (pygls.md section 8).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import stat
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

from . import __version__
from . import protocol as p
from .config import Settings, parse_init_options
from .protocol.errors import CODES, CrushError, InvalidParams, ServerShuttingDown
from .protocol.convert import structure_params

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger(__name__)

T = TypeVar("T")
EOF_CLOSE_TIMEOUT = 1.5  # end of input: the process must be gone within 2 s


def rpc_error(error: CrushError) -> JsonRpcException:
    return JsonRpcException(error.message, CODES.get(error.reason, -32603), {"reason": error.reason})


def _keep_raw(field: str) -> Callable[[dict[str, Any], type], Any]:
    def hook(obj: dict[str, Any], cls: type) -> Any:
        obj.setdefault(field, None)  # JSON-RPC allows leaving params out
        return cls(**{k: v for k, v in obj.items() if k in ("id", "method", "jsonrpc", field)})

    return hook


def converter_factory() -> Any:
    """pygls' converter, but our methods' params and results stay plain JSON."""
    converter = default_converter()
    converter.register_structure_hook(JsonRPCRequestMessage, _keep_raw("params"))
    converter.register_structure_hook(JsonRPCNotification, _keep_raw("params"))
    converter.register_structure_hook(JsonRPCResponseMessage, _keep_raw("result"))
    return converter


class CrushProtocol(LanguageServerProtocol):
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        result.capabilities.experimental = {
            "crush": {"version": p.PROTOCOL_VERSION, "methods": p.METHODS, "notificationTypes": p.NOTIFICATION_TYPES}
        }
        return result

    def handle_message(self, message: Any) -> None:
        # pygls drops requests after `shutdown` without an answer; the contract says answer them.
        method = getattr(message, "method", None)
        if self._shutdown and method not in (None, types.EXIT) and getattr(message, "id", None) is not None:
            self._send_response(message.id, error=rpc_error(ServerShuttingDown(
                "The server is shutting down: only `exit` is accepted now.")).to_response_error())
            return
        super().handle_message(message)

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        super()._send_response(msg_id, result, error)
        flush = getattr(self.writer, "flush", None)
        if flush is not None:  # answers go out at once; notifications are batched per loop turn
            flush()

    def write_json(self, message: dict[str, Any]) -> None:
        """Write one message of plain JSON types (the fast path for notifications)."""
        body = json.dumps(message, separators=(",", ":"))
        if self.writer is not None:
            self.writer.write(f"Content-Length: {len(body)}\r\n\r\n{body}".encode())


class CrushServer(LanguageServer):
    """The connection: numbers notifications and asks the client for permissions."""

    protocol: CrushProtocol

    def __init__(self) -> None:
        super().__init__("crush-ls", __version__, protocol_cls=CrushProtocol, converter_factory=converter_factory)
        self._backend: Backend | None = None
        self._init_options = Settings()
        self._initial_folders: list[str] = []
        self.seq = 0
        self.client_asks_permissions = False
        self.background: set[asyncio.Future[Any]] = set()

    @property
    def backend(self) -> Backend:
        """Built on first use, after the `initialize` answer: its imports (agent, storage,
        tools) are a good part of start-up time, and `initialize` needs none of them."""
        if self._backend is None:
            from .backend import Backend

            self._backend = Backend(self)
            self._backend.init_options = self._init_options
            self._backend.pending_folders = self._initial_folders
        return self._backend

    # ------------------------------------------------------------------ backend.Client
    def send(self, body: dict[str, Any]) -> None:
        self.seq += 1
        body["seq"] = self.seq
        try:
            self.protocol.write_json({"jsonrpc": "2.0", "method": p.NOTIFICATION, "params": body})
        except (BrokenPipeError, ConnectionError, ValueError):
            log.debug("client gone; dropped notification %s", body.get("type"))

    def can_ask(self) -> bool:
        return self.client_asks_permissions and not self.protocol._shutdown

    async def ask(self, params: dict[str, Any]) -> Any:
        msg_id = f"crush-ls-permission-{self.seq}-{id(params)}"
        future = self.protocol.send_request_async(p.REQUEST_PERMISSION, params, msg_id=msg_id)
        try:
            return await future
        except asyncio.CancelledError:
            self.protocol._request_futures.pop(msg_id, None)
            self.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
            raise

    def spawn(self, awaitable: Any) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(awaitable)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def report_server_error(self, error: Exception, source: Any) -> None:
        # Errors are answered to the request that caused them; no showMessage pop-ups.
        level = logging.DEBUG if isinstance(error, JsonRpcException) else logging.ERROR
        log.log(level, "%s: %s", getattr(source, "__name__", source), error)


server = CrushServer()


# ---------------------------------------------------------------------- handler plumbing
async def _settle(awaitable: Any) -> Any:
    try:
        return await awaitable
    except CrushError as exc:
        raise rpc_error(exc) from exc
    except JsonRpcException:
        raise
    except Exception as exc:
        log.exception("request failed")
        raise JsonRpcException(f"Internal error: {type(exc).__name__}: {exc}", -32603, {"reason": "internal"}) from exc


def request(method: str, params_type: type[T]) -> Callable[[Callable[[CrushServer, T], Any]], Any]:
    """Register a handler that gets typed params and may return a value or an awaitable."""

    def register(fn: Callable[[CrushServer, T], Any]) -> Any:
        @functools.wraps(fn)
        def handler(ls: CrushServer, raw: Any) -> Generator[Any, Any, Any]:
            # A generator: pygls runs it at once up to the first yield.
            try:
                params = structure_params(raw, params_type)
            except ValueError as exc:
                raise rpc_error(InvalidParams(f"{method}: {exc}")) from exc
            try:
                outcome = fn(ls, params)
            except CrushError as exc:
                raise rpc_error(exc) from exc
            if asyncio.iscoroutine(outcome) or isinstance(outcome, asyncio.Future):
                outcome = yield (_settle, (outcome,), {})
            return outcome

        server.feature(method)(handler)
        return fn

    return register


# ---------------------------------------------------------------------- lifecycle
@server.feature(types.INITIALIZE)
def on_initialize(ls: CrushServer, params: types.InitializeParams) -> None:
    try:
        ls._init_options = parse_init_options(params.initialization_options)
    except CrushError as exc:
        raise rpc_error(exc) from exc
    experimental = params.capabilities.experimental
    crush_caps = experimental.get("crush") if isinstance(experimental, dict) else None
    ls.client_asks_permissions = isinstance(crush_caps, dict) and crush_caps.get("permissions") is True
    folders = [f.uri for f in params.workspace_folders or []]
    if not folders and (params.root_uri or params.root_path):
        folders = [params.root_uri or f"file://{params.root_path}"]
    # Opened when `initialized` arrives (or by the first request that needs them):
    # the initialize answer does not wait for databases and models.
    ls._initial_folders = folders


@server.feature(types.INITIALIZED)
def on_initialized(ls: CrushServer, params: types.InitializedParams) -> None:
    ls.backend.open_pending()


@server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
def on_folders_changed(ls: CrushServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    ls.backend.open_pending()
    for folder in params.event.removed:
        ls.spawn(ls.backend.close_workspace(folder.uri))
    for folder in params.event.added:
        ls.backend.open_workspace(folder.uri)


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: CrushServer, params: Any) -> Generator[Any, Any, None]:
    # A generator, so the workspaces start closing the moment `shutdown` arrives:
    # a prompt right behind it gets workspace_closing.
    closing = ls.backend.close_all()
    yield (_settle, (closing,), {})


# ---------------------------------------------------------------------- agent/*
@request(p.SEND_MESSAGE, p.SendMessageParams)
def send_message(ls: CrushServer, params: p.SendMessageParams) -> Any:
    return ls.backend.send_message(params)


@request(p.CANCEL, p.CancelParams)
def cancel(ls: CrushServer, params: p.CancelParams) -> Any:
    return ls.backend.cancel(params)


@request(p.STATUS, p.SessionParams)
def status(ls: CrushServer, params: p.SessionParams) -> Any:
    result = ls.backend.status(params.workspace, params.session_id)
    result["lastSeq"] = ls.seq
    return result


@request(p.QUEUED_PROMPTS, p.SessionParams)
def queued_prompts(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.queued_prompts(params.workspace, params.session_id)


@request(p.CLEAR_QUEUE, p.SessionParams)
def clear_queue(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.clear_queue(params.workspace, params.session_id)


@request(p.SUMMARIZE, p.SessionParams)
def summarize(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.summarize(params.workspace, params.session_id)


@request(p.MODELS, p.WorkspaceParams)
def models(ls: CrushServer, params: p.WorkspaceParams) -> Any:
    return ls.backend.models(params.workspace)


@request(p.SET_MODEL, p.SetModelParams)
def set_model(ls: CrushServer, params: p.SetModelParams) -> Any:
    return ls.backend.set_model(params.workspace, params.model)


# ---------------------------------------------------------------------- session/*
@request(p.SESSION_CREATE, p.CreateSessionParams)
def session_create(ls: CrushServer, params: p.CreateSessionParams) -> Any:
    return ls.backend.create_session(params.workspace, params.title)


@request(p.SESSION_LIST, p.WorkspaceParams)
def session_list(ls: CrushServer, params: p.WorkspaceParams) -> Any:
    return ls.backend.list_sessions(params.workspace)


@request(p.SESSION_GET, p.SessionParams)
def session_get(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.get_session(params.workspace, params.session_id)


@request(p.SESSION_MESSAGES, p.SessionParams)
def session_messages(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.session_messages(params.workspace, params.session_id)


@request(p.SESSION_RENAME, p.RenameSessionParams)
def session_rename(ls: CrushServer, params: p.RenameSessionParams) -> Any:
    return ls.backend.rename_session(params.workspace, params.session_id, params.title)


@request(p.SESSION_DELETE, p.SessionParams)
def session_delete(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.delete_session(params.workspace, params.session_id)


# ---------------------------------------------------------------------- transport
class StdoutWriter:
    """Collects what one turn of the event loop writes and sends it in one write.

    Under load many notifications are written per loop iteration; one write
    instead of one per message keeps the loop free to read the next request.
    Order is kept: everything goes through one buffer. With a pipe transport
    the write never blocks the loop, even when the client stops reading.
    """

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

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        if self._scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
            self._scheduled = True
        except RuntimeError:  # no loop (start-up or teardown): write through
            self.flush()

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
        deadline = asyncio.get_running_loop().time() + timeout
        transport = self._transport
        while transport is not None and not transport.is_closing() and transport.get_write_buffer_size():
            if asyncio.get_running_loop().time() > deadline:
                log.warning("the client did not read the last %d bytes", transport.get_write_buffer_size())
                return
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.flush()


def _answer_malformed(ls: CrushServer, msg_id: Any, code: int, message: str) -> None:
    ls.protocol.write_json({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message,
                                                                      "data": {"reason": "invalid_request"}}})


def _valid_id(msg_id: Any) -> bool:
    return msg_id is None or (isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool))


def _invalid_message(data: Any) -> str | None:
    """Why a parsed body is not a JSON-RPC 2.0 message pygls can handle, or None."""
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        return "expected a JSON-RPC 2.0 object"
    if "method" in data and not isinstance(data["method"], str):
        return "`method` must be a string"
    if "id" in data and not _valid_id(data["id"]):
        return "`id` must be a string or an integer"
    if data.get("method") == types.CANCEL_REQUEST:
        params = data.get("params")
        if not isinstance(params, dict) or not _valid_id(params.get("id")):
            return "$/cancelRequest needs params.id, a string or an integer"
    return None


def receive(ls: CrushServer, body: bytes) -> None:
    """Parse one framed body and hand it to pygls; malformed input is answered, never fatal."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        _answer_malformed(ls, None, -32700, f"Parse error: the body is not JSON ({type(exc).__name__}).")
        return
    problem = _invalid_message(data)
    if problem:
        msg_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(data, dict) and "method" in data and "id" not in data:
            log.warning("dropped a malformed notification: %s", problem)
            return
        _answer_malformed(ls, msg_id if _valid_id(msg_id) else None, -32600, f"Invalid request: {problem}.")
        return
    try:
        message = ls.protocol.structure_message(data)
    except Exception as exc:  # noqa: BLE001 - e.g. initialize params that lsprotocol rejects
        if "id" in data and "method" in data:
            _answer_malformed(ls, data["id"], -32602, f"Invalid params for {data['method']}: {exc.__cause__ or exc}")
        else:
            log.warning("dropped a malformed message: %s", exc)
        return
    try:
        ls.protocol.handle_message(message)
    except Exception as exc:  # noqa: BLE001 - one bad message must not end the connection
        log.exception("handling %s failed", data.get("method") or "a response")
        if "id" in data and "method" in data:
            _answer_malformed(ls, data["id"], -32603, f"Internal error: {type(exc).__name__}: {exc}")


class Framing(asyncio.Protocol):
    """Splits the input into Content-Length frames and handles each as soon as it is read.

    Handling happens inside `data_received`, which the event loop calls as it
    sees the input: a request is answered before the timers and tasks that
    became ready in the same loop turn (a prompt is acknowledged at once even
    while many sessions stream). `ended` resolves to None at end of input, or
    to the exit code when `exit` arrives.
    """

    def __init__(self, ls: CrushServer) -> None:
        self._ls = ls
        self._buffer = bytearray()
        self.ended: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.ended.done():
            return
        self._buffer += data
        while (body := self._next_body()) is not None:
            try:
                receive(self._ls, body)
            except SystemExit as exit_request:  # pygls' `exit` handler
                self._finish(int(exit_request.code or 0))
                return

    def _next_body(self) -> bytes | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        length = None
        for line in bytes(self._buffer[:end]).split(b"\r\n"):
            name, _, value = line.decode("ascii", errors="replace").partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is None:
            log.warning("a frame without Content-Length: answered as a parse error")
            del self._buffer[:end + 4]
            return b""  # nothing to handle; the loop goes on with the next frame
        if len(self._buffer) < end + 4 + length:
            return None
        body = bytes(self._buffer[end + 4:end + 4 + length])
        del self._buffer[:end + 4 + length]
        return body

    def eof_received(self) -> bool:
        self._finish(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(None)

    def _finish(self, code: int | None) -> None:
        if not self.ended.done():
            self.ended.set_result(code)


async def _run_connection(ls: CrushServer, framing: Framing) -> int:
    code = await framing.ended
    # End of input, or `exit` (without `shutdown` the runs still need ending and storing).
    await ls.backend.close_all(EOF_CLOSE_TIMEOUT)
    return 0 if code is None else code


def _pollable(stream: BinaryIO) -> bool:
    mode = os.fstat(stream.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stream.isatty()


def _feed_from_file(loop: asyncio.AbstractEventLoop, framing: Framing, stream: BinaryIO) -> None:
    while chunk := stream.read1(1 << 16) if hasattr(stream, "read1") else stream.read(1 << 16):
        loop.call_soon_threadsafe(framing.data_received, chunk)
    loop.call_soon_threadsafe(framing.connection_lost, None)


def serve_stdio(stdin: BinaryIO, stdout: BinaryIO) -> int:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        writer = StdoutWriter(stdout)
        await writer.attach()
        server.protocol.set_writer(writer)
        framing = Framing(server)
        if _pollable(stdin):
            await loop.connect_read_pipe(lambda: framing, stdin)
        else:  # a regular file or /dev/null (epoll refuses both): read it in a thread
            loop.run_in_executor(None, _feed_from_file, loop, framing, stdin)
        try:
            return await _run_connection(server, framing)
        finally:
            await writer.drain(0.4)

    try:
        return asyncio.run(main())
    except BrokenPipeError:
        log.error("the client closed the connection")
        return 0


class SocketWriter:
    """pygls' writer interface over a TCP transport."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        pass  # closed when the connection ends


def serve_tcp(host: str, port: int) -> int:
    """Serve one client on TCP; the process ends with that connection."""

    class TcpFraming(Framing):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if served.done():  # one client per process
                transport.close()
                return
            self.transport = transport
            server.protocol.set_writer(SocketWriter(transport))  # type: ignore[arg-type]
            served.set_result(self)

    async def main() -> int:
        nonlocal served
        served = asyncio.get_running_loop().create_future()
        tcp = await asyncio.get_running_loop().create_server(lambda: TcpFraming(server), host, port)
        log.info("serving on %s", ", ".join(str(s.getsockname()) for s in tcp.sockets))
        async with tcp:
            framing: TcpFraming = await served
            code = await _run_connection(server, framing)
            framing.transport.close()
            return code

    served: asyncio.Future[Framing]
    return asyncio.run(main())


__all__ = ["server", "serve_stdio", "serve_tcp"]
