"""The pygls server: registers handlers, translates errors, owns the connection.

Handlers are thin: parse params, call the backend, map `CrushError` to a
JSON-RPC error with `data.reason`. Handlers run synchronously when their
message arrives, so requests take effect in arrival order and a
`agent/sendMessage` response is written before any notification of its run;
where the backend returns an awaitable, the handler yields it to pygls and
answers when it resolves.

The connection itself (framing, stdio/TCP, malformed input) is
`crush_ls.transport`; this module is what it serves (`CrushServer` is its
`Peer`), the adapter between it and pygls.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

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
from .protocol.convert import structure_params
from .protocol.errors import CODES, CrushError, InvalidParams, ServerShuttingDown
from .transport import envelope
from .transport.framing import encode
from .transport.stdio import Writer

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
        if self.writer is not None:
            self.writer.write(encode(message))


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

    # ------------------------------------------------------------------ transport.stdio.Peer
    def connected(self, writer: Writer) -> None:
        self.protocol.set_writer(writer)  # type: ignore[arg-type]

    def handle(self, data: dict[str, Any]) -> None:
        try:
            message = self.protocol.structure_message(data)
        except Exception as exc:  # noqa: BLE001 - e.g. initialize params that lsprotocol rejects
            if envelope.is_request(data):
                self.protocol.write_json(envelope.error_response(
                    data["id"], -32602, f"Invalid params for {data['method']}: {exc.__cause__ or exc}"))
            else:
                log.warning("dropped a malformed message: %s", exc)
            return
        self.protocol.handle_message(message)

    async def disconnected(self) -> None:
        await self.backend.close_all(EOF_CLOSE_TIMEOUT)

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


__all__ = ["server"]
