"""The server: crush-ls' own requests, the LSP lifecycle through pygls, the connection's state.

`CrushServer` is what `crush_ls.transport` serves (its `Peer`). Each message
is handled the moment it is read: crush-ls answers its own methods (agent/*,
session/*), `$/cancelRequest`, `shutdown`, `exit` and the responses to its own
requests from the table below; pygls gets the rest (`initialize`,
`initialized`, `workspace/didChangeWorkspaceFolders`, unknown methods).
Handlers are thin: parse params, call the backend, map `CrushError` to a
JSON-RPC error with `data.reason`. They run synchronously, so requests take
effect in arrival order and an `agent/sendMessage` answer is written before
any notification of its run; where the backend returns an awaitable, the
answer is written when it resolves.

Every touch of a pygls internal is under "pygls internals" at the end,
named with the upstream issue and pinned by tests/unit/test_pygls_pins.py.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import itertools
import json
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
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
from .protocol.capabilities import ClientCapabilities
from .protocol.convert import structure_params
from .protocol.errors import ClientDeclined, CrushError, InvalidParams, ServerShuttingDown
from .settings import InitOptions, parse_init_options
from .transport import envelope
from .transport.framing import ContentLength, encode, params_frame
from .transport.stdio import Backpressure, Writer

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger(__name__)

T = TypeVar("T")
EOF_CLOSE_TIMEOUT = 1.5  # end of input: the process must be gone within 2 s
SERVER_NOT_INITIALIZED = -32002  # LSP's ServerNotInitialized
REQUEST_CANCELLED = -32800
OWN_ID_PREFIX = "crush-ls/"  # ids of the server's own requests: never confused with the client's
DELTAS = ("text_delta", "reasoning_delta")
NOTIFICATION_HEAD = b'{"jsonrpc":"2.0","method":"%s","params":' % p.NOTIFICATION.encode()
DELTA_BUDGET = 1 << 20  # characters of deltas queued per connection while the client does not read


class ServerNotInitialized(CrushError):
    """A request before `initialize` (LSP); it changes nothing."""

    reason = "server_not_initialized"

    @property
    def code(self) -> int:
        return SERVER_NOT_INITIALIZED


Handler = Callable[["CrushServer", Any], Any]
HANDLERS: dict[str, Handler] = {}  # crush-ls' own requests, answered without pygls


def request(method: str, params_type: type[T]) -> Callable[[Callable[[CrushServer, T], Any]], Any]:
    """Register a handler that gets typed params and returns a value or an awaitable."""

    def register(fn: Callable[[CrushServer, T], Any]) -> Any:
        def handler(ls: CrushServer, raw: Any) -> Any:
            try:
                params = structure_params(raw, params_type)
            except ValueError as exc:
                raise InvalidParams(f"{method}: {exc}") from exc
            return fn(ls, params)

        HANDLERS[method] = handler
        return fn

    return register


def error_body(error: CrushError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "data": {"reason": error.reason}}


class HeldDeltas:
    """Stream deltas held back while the client does not read what is written.

    A held delta is joined with the one before it (same run, message and kind),
    so a stalled client costs one frame per message instead of one per token,
    and is written before the run's next other notification or once the client
    has caught up: answers never queue behind deltas written meanwhile. At most
    DELTA_BUDGET characters of deltas are queued per stall; beyond that the rest
    of that message's deltas are dropped (what the client streamed stays a
    prefix; the whole text is in `session/messages`, and in `run_complete` for
    the run's last message).
    """

    def __init__(self, write: Callable[[dict[str, Any]], None], budget: int = DELTA_BUDGET) -> None:
        self._write = write
        self._budget = budget
        self._queued = 0  # characters held or written since the client fell behind
        self._runs: dict[Any, list[dict[str, Any]]] = {}  # held deltas by run, in order
        self._dropping: set[tuple[Any, Any, str]] = set()  # (run, message, kind) past the budget
        self.dropped = 0

    @property
    def idle(self) -> bool:
        """Nothing held and nothing being dropped: a delta offered now would be written at once."""
        return not self._runs and not self._dropping

    def offer(self, body: dict[str, Any], behind: bool) -> bool:
        """True when the delta is held or dropped instead of being written now."""
        key = (body.get("runId"), body.get("messageId"), body["type"])
        if key in self._dropping or (behind and self._queued + len(body["text"]) > self._budget):
            self._dropping.add(key)
            self.dropped += 1
            return True
        if not behind:
            return False
        self._queued += len(body["text"])
        held = self._runs.setdefault(key[0], [])
        if held and (held[-1].get("messageId"), held[-1]["type"]) == key[1:]:
            held[-1]["text"] += body["text"]
        else:
            held.append(body)
        return True

    def release(self, run_id: Any, ended: bool = False) -> None:
        """Write what the run holds (before its next other notification)."""
        for body in self._runs.pop(run_id, ()):
            self._write(body)
        if ended and self._dropping:
            self._dropping = {key for key in self._dropping if key[0] != run_id}

    def caught_up(self) -> None:
        for run_id in list(self._runs):
            self.release(run_id)
        self._queued = 0


def _new_backend(client: CrushServer, settings: InitOptions, folders: list[str]) -> Backend:
    from .backend import Backend

    backend = Backend(client)
    backend.init_options = settings
    backend.pending_folders = list(folders)  # opened at `initialized` (or by the first request)
    return backend


class CrushServer(LanguageServer):
    """One client's connection: its lifecycle, its backend, the notifications and questions sent to it."""

    protocol: CrushProtocol

    def __init__(self) -> None:
        super().__init__("crush-ls", __version__, protocol_cls=CrushProtocol, converter_factory=converter_factory)
        self._settings: InitOptions | None = None  # from `initialize`; None until it succeeded
        self._folders: list[str] = []
        self._backend: Backend | None = None
        self.shut_down = False  # `shutdown` was answered: only `exit` is accepted
        self.seq = 0
        self.client_asks_permissions = False
        self.capabilities = ClientCapabilities()
        self.background: set[asyncio.Future[Any]] = set()
        self._own_ids = itertools.count(1)
        self._asked: dict[Any, asyncio.Future[Any]] = {}  # the server's requests, by id, awaiting the client
        self._answering: dict[Any, asyncio.Future[Any]] = {}  # client requests whose answer is awaited
        self._backpressure: Backpressure | None = None
        self._deltas = HeldDeltas(self._write_notification)
        register_lifecycle(self)

    @property
    def backend(self) -> Backend:
        """Built from `initialize`'s settings and folders once first needed after its answer:
        its imports (agent, storage, tools) are a good part of start-up time."""
        if self._backend is None:
            if self._settings is None:
                raise ServerNotInitialized("Send `initialize` first.")
            self._backend = _new_backend(self, self._settings, self._folders)
        return self._backend

    def initialize(self, settings: InitOptions, folders: list[str], asks_permissions: bool,
                   capabilities: ClientCapabilities) -> None:
        self._settings, self._folders = settings, folders
        self.client_asks_permissions = asks_permissions
        self.capabilities = capabilities

    # ------------------------------------------------------------------ backend.Client
    def send(self, body: dict[str, Any]) -> None:
        behind = self._backpressure is not None and self._backpressure.behind
        if not behind and self._deltas.idle:  # the usual case, per streamed delta: nothing held back
            self._write_notification(body)
            return
        if body.get("type") in DELTAS and self._deltas.offer(body, behind):
            return
        self._deltas.release(body.get("runId"), ended=body.get("type") == "run_complete")
        self._write_notification(body)

    def _write_notification(self, body: dict[str, Any]) -> None:
        self.seq += 1  # numbered as written: seq stays gapless and in wire order
        body["seq"] = self.seq
        writer = self.protocol.writer
        if writer is None:
            return
        try:
            writer.write(params_frame(NOTIFICATION_HEAD, body))
        except (BrokenPipeError, ConnectionError, ValueError):
            log.debug("client gone; dropped notification %s", body.get("type"))

    def can_ask(self) -> bool:
        return self.client_asks_permissions and not self.shut_down

    async def ask(self, params: dict[str, Any]) -> Any:
        return await self.request(p.REQUEST_PERMISSION, params)

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """A server-to-client request (id `crush-ls/<kind>/<n>`); its result. Withdrawn with
        `$/cancelRequest` when the await is cancelled or `timeout` passes (TimeoutError)."""
        kind = "permission" if method == p.REQUEST_PERMISSION else method.rpartition("/")[2]
        msg_id = f"{OWN_ID_PREFIX}{kind}/{next(self._own_ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asked[msg_id] = future
        self.protocol.write_json({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        try:
            async with asyncio.timeout(timeout):
                return await future
        except (asyncio.CancelledError, TimeoutError):
            if self._asked.pop(msg_id, None) is not None:  # withdrawn by the server: tell the client
                self.protocol.write_json({"jsonrpc": "2.0", "method": envelope.CANCEL_REQUEST,
                                          "params": {"id": msg_id}})
            raise
        finally:
            self._asked.pop(msg_id, None)

    def spawn(self, awaitable: Any) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    # ------------------------------------------------------------------ transport.stdio.Peer
    def connected(self, writer: Writer) -> None:
        self.protocol.set_writer(writer)
        self._backpressure = getattr(writer, "backpressure", None)
        if self._backpressure is not None:
            self._backpressure.on_caught_up.append(self._deltas.caught_up)

    def handle(self, data: dict[str, Any]) -> None:
        method = data.get("method")
        if method is None:
            self._on_response(data)
        elif method == types.EXIT:
            raise SystemExit(0 if self.shut_down else 1)
        elif (refusal := self._refusal(method)) is not None:
            self._refuse(data, refusal)
        elif method == envelope.CANCEL_REQUEST:
            self._on_cancel(data["params"]["id"])
            if "id" in data:  # a notification sent as a request still gets its answer
                self._reply(data["id"], None)
        elif (handler := HANDLERS.get(method)) is not None:
            self._run(handler, data)
        else:
            pygls_handle(self, data)

    async def disconnected(self) -> None:
        if self._backend is not None:
            await self._backend.close_all(EOF_CLOSE_TIMEOUT)

    # ------------------------------------------------------------------ answering
    def _refusal(self, method: str) -> CrushError | None:
        if self.shut_down:
            return ServerShuttingDown("The server is shutting down: only `exit` is accepted now.")
        if self._settings is None and method != types.INITIALIZE:
            return ServerNotInitialized(f"{method}: the server is not initialized; send `initialize` first.")
        return None

    def _refuse(self, data: dict[str, Any], error: CrushError) -> None:
        log.info("refused %s (%s): %s", data["method"], error.reason, error.message)  # answered: not a fault
        if "id" in data:
            self._reply_error(data["id"], error_body(error))

    def _run(self, handler: Handler, data: dict[str, Any]) -> None:
        try:
            outcome = handler(self, data.get("params"))
        except CrushError as exc:
            self._refuse(data, exc)
            return
        if type(outcome) is dict or outcome is None or not inspect.isawaitable(outcome):  # dict: no ABC check
            if "id" in data:
                self._reply(data["id"], outcome)
            return
        task = asyncio.ensure_future(outcome)
        if "id" in data:
            self._answering[data["id"]] = task
        else:
            self.background.add(task)
        task.add_done_callback(functools.partial(self._answer_later, data))

    def _answer_later(self, data: dict[str, Any], task: asyncio.Future[Any]) -> None:
        self.background.discard(task)
        if "id" in data and self._answering.get(data["id"]) is not task:
            return  # cancelled by the client: answered then
        self._answering.pop(data.get("id"), None)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, CrushError):
            self._refuse(data, error)
        elif error is not None or task.cancelled():
            log.error("%s failed", data["method"], exc_info=error)
            if (answer := envelope.internal_error(data, error or asyncio.CancelledError())) is not None:
                self._write_answer(answer)
        elif "id" in data:
            self._reply(data["id"], task.result())

    def _on_cancel(self, msg_id: Any) -> None:
        if (asked := self._asked.pop(msg_id, None)) is not None:
            # The client will not answer the server's question: PROTOCOL says that is a deny.
            if not asked.done():
                asked.set_exception(ClientDeclined("the client cancelled the request"))
        elif (task := self._answering.pop(msg_id, None)) is not None:
            # The work goes on (a rename or delete has taken effect already); only the answer is dropped.
            self._reply_error(msg_id, {"code": REQUEST_CANCELLED, "message": f"Request {msg_id!r} was cancelled.",
                                       "data": {"reason": "request_cancelled"}})
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
        else:
            log.debug("$/cancelRequest for %r: nothing of that id is pending", msg_id)

    def _on_response(self, data: dict[str, Any]) -> None:
        future = self._asked.pop(data.get("id"), None)
        if future is None:
            log.info("ignored a response to %r: the server sent no request of that id", data.get("id"))
            return
        if future.done():
            return
        if "error" in data:
            future.set_exception(ClientDeclined(f"the client answered with an error: {data['error']}"))
        else:
            future.set_result(data.get("result"))

    def _reply(self, msg_id: Any, result: Any) -> None:
        if isinstance(result, p.EncodedJson):  # JSON text already (session/messages): spliced in as it is
            self._write_answer(f'{{"jsonrpc":"2.0","id":{json.dumps(msg_id)},"result":{result.text}}}'.encode())
            return
        self._write_answer({"jsonrpc": "2.0", "id": msg_id, "result": result})

    def _reply_error(self, msg_id: Any, error: dict[str, Any]) -> None:
        self._write_answer({"jsonrpc": "2.0", "id": msg_id, "error": error})

    def _write_answer(self, message: dict[str, Any] | bytes) -> None:
        frame = ContentLength.frame(message) if isinstance(message, bytes) else encode(message)
        writer = self.protocol.writer
        write_now = getattr(writer, "write_now", None)
        if write_now is not None:  # answers go out at once (behind what is pending), no loop turn waited for
            write_now(frame)
        elif writer is not None:  # notifications are batched per loop turn; other writers write through
            writer.write(frame)

    def report_server_error(self, error: Exception, source: Any) -> None:
        # Errors are answered to the request that caused them; no showMessage pop-ups.
        level = logging.INFO if isinstance(error, JsonRpcException) else logging.ERROR
        log.log(level, "%s: %s", getattr(source, "__name__", source), error)


# ---------------------------------------------------------------------- lifecycle
def on_initialize(ls: CrushServer, params: types.InitializeParams) -> None:
    try:
        settings = parse_init_options(params.initialization_options)
    except CrushError as exc:
        raise rpc_error(exc) from exc
    experimental = params.capabilities.experimental
    crush_caps = experimental.get("crush") if isinstance(experimental, dict) else None
    folders = [f.uri for f in params.workspace_folders or []]
    if not folders and (params.root_uri or params.root_path):
        folders = [params.root_uri or f"file://{params.root_path}"]
    # Opened when `initialized` arrives (or by the first request that needs them):
    # the initialize answer does not wait for databases and models.
    ls.initialize(settings, folders, _declared(crush_caps, "permissions"),
                  client_capabilities(params.capabilities, crush_caps))


def _value(encoding: Any) -> str:
    return str(getattr(encoding, "value", encoding))  # pygls answers an enum member or a plain string


def _declared(crush_caps: Any, name: str) -> bool:
    return isinstance(crush_caps, dict) and crush_caps.get(name) is True


def client_capabilities(caps: types.ClientCapabilities, crush_caps: Any) -> ClientCapabilities:
    """The flags of "Documents and edits" (PROTOCOL) from what the client declared."""
    workspace, window = caps.workspace, caps.window
    edit = workspace.workspace_edit if workspace is not None else None
    show = window.show_document if window is not None else None
    return ClientCapabilities(
        apply_edit=bool(workspace is not None and workspace.apply_edit),
        document_changes=bool(edit is not None and edit.document_changes),
        create_files=bool(edit is not None and types.ResourceOperationKind.Create in (edit.resource_operations or [])),
        show_document=bool(show is not None and show.support),
        save_document=_declared(crush_caps, "saveDocument"),
        diagnostics=_declared(crush_caps, "diagnostics"),
        position_encoding=_value(ServerCapabilitiesBuilder.choose_position_encoding(caps)),
    )


def on_initialized(ls: CrushServer, params: types.InitializedParams) -> None:
    backend = ls.backend
    backend.open_pending()
    for workspace in backend.workspaces.values():
        workspace.agent.prepare()
    from .tools.worker import keep_spare  # (the tools are not needed before the initialize answer)

    keep_spare()  # this loop lives as long as the server: each search leaves the next worker starting
    # Every module the server runs on is loaded now (lsprotocol alone is ~50k objects): keep
    # them out of the collector's scans, or its first full pass stalls the loop mid-stream
    # (0.2 s under load: a prompt acknowledged that much late).
    gc.freeze()


def on_folders_changed(ls: CrushServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    ls.backend.open_pending()
    for folder in params.event.removed:
        ls.spawn(ls.backend.close_workspace(folder.uri))
    for folder in params.event.added:
        ls.backend.open_workspace(folder.uri)


def register_lifecycle(ls: CrushServer) -> None:
    """The LSP methods pygls handles (it builds the initialize answer and its capabilities)."""
    ls.feature(types.INITIALIZE)(on_initialize)
    ls.feature(types.INITIALIZED)(on_initialized)
    ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(on_folders_changed)


def shutdown(ls: CrushServer, _params: Any) -> Any:
    # The workspaces start closing the moment `shutdown` arrives (a prompt right
    # behind it gets workspace_closing); after the answer only `exit` is accepted.
    closing = ls._backend.close_all() if ls._backend is not None else None

    async def closed() -> None:
        try:
            if closing is not None:
                await closing
        finally:
            ls.shut_down = True

    return closed()


HANDLERS[types.SHUTDOWN] = shutdown


# ---------------------------------------------------------------------- document sync
# crush-ls keeps the mirror (backend/documents.py); pygls never sees these, so it keeps no second copy.
def _text_document(method: str, raw: Any, *fields: tuple[str, type]) -> dict[str, Any]:
    document = raw.get("textDocument") if isinstance(raw, dict) else None
    if not isinstance(document, dict) or not isinstance(document.get("uri"), str) or not all(
            isinstance(document.get(name), kind) and not isinstance(document.get(name), bool) for name, kind in fields):
        raise InvalidParams(f"{method}: textDocument must name a uri{''.join(f', {n}' for n, _ in fields)}")
    return document


def did_open(ls: CrushServer, raw: Any) -> None:
    document = _text_document(types.TEXT_DOCUMENT_DID_OPEN, raw, ("version", int), ("text", str))
    backend = ls.backend
    backend.open_pending()  # the folders decide what is mirrored
    backend.documents.open(document["uri"], document["version"], document["text"])


def did_change(ls: CrushServer, raw: Any) -> None:
    document = _text_document(types.TEXT_DOCUMENT_DID_CHANGE, raw, ("version", int))
    changes = raw.get("contentChanges")
    if not isinstance(changes, list):
        raise InvalidParams(f"{types.TEXT_DOCUMENT_DID_CHANGE}: contentChanges must be a list")
    ls.backend.documents.change(document["uri"], document["version"], changes)


def did_close(ls: CrushServer, raw: Any) -> None:
    ls.backend.documents.close(_text_document(types.TEXT_DOCUMENT_DID_CLOSE, raw)["uri"])


HANDLERS[types.TEXT_DOCUMENT_DID_OPEN] = did_open
HANDLERS[types.TEXT_DOCUMENT_DID_CHANGE] = did_change
HANDLERS[types.TEXT_DOCUMENT_DID_CLOSE] = did_close
HANDLERS[types.TEXT_DOCUMENT_DID_SAVE] = lambda ls, raw: None  # the disk is read when it matters


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


@request(p.POP_QUEUE, p.SessionParams)
def pop_queue(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.pop_queue(params.workspace, params.session_id)


@request(p.SUMMARIZE, p.SessionParams)
def summarize(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.summarize(params.workspace, params.session_id)


@request(p.MODELS, p.WorkspaceParams)
def models(ls: CrushServer, params: p.WorkspaceParams) -> Any:
    return ls.backend.models(params.workspace)


@request(p.SET_MODEL, p.SetModelParams)
def set_model(ls: CrushServer, params: p.SetModelParams) -> Any:
    return ls.backend.set_model(params.workspace, params.model)


@request(p.MCP_SERVERS, p.WorkspaceParams)
def mcp_servers(ls: CrushServer, params: p.WorkspaceParams) -> Any:
    return ls.backend.mcp_servers(params.workspace)


@request(p.CHANGES, p.ChangesParams)
def changes(ls: CrushServer, params: p.ChangesParams) -> Any:
    return ls.backend.changes(params)


@request(p.REVIEW, p.ReviewParams)
def review(ls: CrushServer, params: p.ReviewParams) -> Any:
    return ls.backend.review(params)


@request(p.REWIND, p.RewindParams)
def rewind(ls: CrushServer, params: p.RewindParams) -> Any:
    return ls.backend.rewind(params)


@request(p.UNREWIND, p.UnrewindParams)
def unrewind(ls: CrushServer, params: p.UnrewindParams) -> Any:
    return ls.backend.unrewind(params)


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
    return ls.backend.session_messages_json(params.workspace, params.session_id)


@request(p.SESSION_RENAME, p.RenameSessionParams)
def session_rename(ls: CrushServer, params: p.RenameSessionParams) -> Any:
    return ls.backend.rename_session(params.workspace, params.session_id, params.title)


@request(p.SESSION_DELETE, p.SessionParams)
def session_delete(ls: CrushServer, params: p.SessionParams) -> Any:
    return ls.backend.delete_session(params.workspace, params.session_id)


# ---------------------------------------------------------------------- pygls internals
# Everything crush-ls relies on in pygls beyond its documented handler API is
# here, pinned for pygls 2.1 by tests/unit/test_pygls_pins.py. What crush-ls no
# longer touches, because it answers its own requests: `_shutdown` (requests
# after `shutdown` dropped unanswered, pygls#605), `_send_response`,
# `_request_futures` (a withdrawn server request left behind, pygls#621/#628;
# `_result_types` of unanswered requests, pygls#608; and every step of a
# generator handler kept with its result, under a fresh uuid, for the life of
# the process: the session/messages leak, unreported upstream) and generator
# handlers of its own.
def _keep_raw(field: str) -> Callable[[dict[str, Any], type], Any]:
    def hook(obj: dict[str, Any], cls: type) -> Any:
        obj.setdefault(field, None)  # JSON-RPC allows leaving params out
        return cls(**{k: v for k, v in obj.items() if k in ("id", "method", "jsonrpc", field)})

    return hook


def converter_factory() -> Any:
    """pygls' converter, but params and results of methods lsprotocol does not know stay plain
    JSON (pygls makes namedtuples of them, which serialize as arrays: pygls#285)."""
    converter = default_converter()  # type: ignore[no-untyped-call]  # pygls does not annotate it
    converter.register_structure_hook(JsonRPCRequestMessage, _keep_raw("params"))
    converter.register_structure_hook(JsonRPCNotification, _keep_raw("params"))
    converter.register_structure_hook(JsonRPCResponseMessage, _keep_raw("result"))
    return converter


class CrushProtocol(LanguageServerProtocol):
    # pygls has no public way to add `capabilities.experimental` to the initialize
    # answer: override its built-in generator handler and post-process its result.
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        result.capabilities.text_document_sync = types.TextDocumentSyncOptions(
            open_close=True, change=types.TextDocumentSyncKind.Incremental,
            save=types.SaveOptions(include_text=False))
        result.capabilities.experimental = {
            "crush": {"version": p.PROTOCOL_VERSION, "methods": p.METHODS, "notificationTypes": p.NOTIFICATION_TYPES}
        }
        return result

    def write_json(self, message: dict[str, Any]) -> None:
        """Write one message of plain JSON types through pygls' writer (`self.writer`, set by `set_writer`)."""
        if self.writer is not None:
            self.writer.write(encode(message))

    def write_body(self, body: bytes) -> None:
        """Write one message already encoded as JSON."""
        if self.writer is not None:
            self.writer.write(ContentLength.frame(body))


def pygls_handle(ls: CrushServer, data: dict[str, Any]) -> None:
    """Hand one message to pygls, as its own reader would: `structure_message`, then `handle_message`.
    (crush-ls reads the input itself: pygls' thread-pool reader took 17 ms per request under load.)"""
    try:
        message = ls.protocol.structure_message(data)
    except Exception as exc:  # noqa: BLE001 - e.g. initialize params that lsprotocol rejects
        if envelope.is_request(data):
            ls._write_answer(envelope.error_response(
                data["id"], -32602, f"Invalid params for {data['method']}: {exc.__cause__ or exc}"))
        else:
            log.warning("dropped a malformed %s: %s", data.get("method"), exc.__cause__ or exc)
        return
    ls.protocol.handle_message(message)
    _forget_finished(ls.protocol)


def _forget_finished(protocol: LanguageServerProtocol) -> None:
    """pygls keeps the future of every notification its built-in generator handlers run
    (`initialized`, `workspace/didChangeWorkspaceFolders`, `textDocument/didOpen`...) in
    `_request_futures` under a fresh uuid, and never removes it (unreported upstream).
    Requests pop their own entry when answered: a finished entry is garbage."""
    for key in [key for key, future in protocol._request_futures.items() if future.done()]:
        del protocol._request_futures[key]


def rpc_error(error: CrushError) -> JsonRpcException:
    """A CrushError raised in a handler pygls runs (initialize), as pygls answers it."""
    return JsonRpcException(error.message, error.code, {"reason": error.reason})


server = CrushServer()

__all__ = ["CrushServer", "converter_factory", "server"]
