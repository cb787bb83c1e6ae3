"""The ACP agent: ACP requests as backend calls, backend notifications as `session/update`s.

`AcpAgent` is both sides of the adapter. To the `acp` SDK it is the `Agent`
(its methods are the ACP requests, called by the SDK's router with validated
params); to the backend it is the `Client` (send / can_ask / ask, plus `files`
for the editor's buffers). An ACP session is a crush-ls session of the
workspace opened at its `cwd`; a `session/prompt` is one run, and its answer
waits for that run's `run_complete` (a prompt sent while the session is busy
queues behind the running one, as in Crush).

Updates are written straight to the output as the backend produces them, in
order, so every update of a turn precedes the `session/prompt` answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from acp import RequestError, schema
from acp.agent.connection import AgentSideConnection

from .. import __version__
from ..agent.turn import MAX_STEPS
from ..backend import Backend, Workspace
from ..protocol import Attachment, CancelParams, ModelSelection, SendMessageParams
from ..protocol.capabilities import ClientCapabilities
from ..protocol.errors import ClientDeclined, CrushError, InvalidParams, SessionNotFound, WorkspaceNotFound
from ..settings import InitOptions, ModelConfig
from ..storage import DB_NAME
from ..tools.paths import is_inside
from . import updates
from .content import prompt_input, server_config
from .session_mcp import SessionServers
from .stream import SessionStream, replay_bodies

log = logging.getLogger(__name__)

# Permission modes: the ACP config option "mode" and the legacy session modes.
ASK, ALLOW_EDITS, ALLOW_ALL = "ask", "allow_edits", "allow_all"
MODES = {
    ASK: ("Ask", "Ask before every edit, command and fetch"),
    ALLOW_EDITS: ("Allow edits", "Edit files of the workspace without asking; ask for commands and fetches"),
    ALLOW_ALL: ("Allow everything", "Run every tool call inside the workspace without asking (--yolo)"),
}
PERMISSION_OPTIONS = [
    schema.PermissionOption(option_id="allow_once", name="Allow", kind="allow_once"),
    schema.PermissionOption(option_id="allow_always", name="Always allow", kind="allow_always"),
    schema.PermissionOption(option_id="reject_once", name="Reject", kind="reject_once"),
    schema.PermissionOption(option_id="reject_always", name="Always reject", kind="reject_always"),
]
DECISIONS = {"allow_once": "allow", "allow_always": "allow_session", "reject_once": "deny", "reject_always": "deny"}
COMMANDS = [
    schema.AvailableCommand(name="summarize",
                            description="Summarize the conversation; the session goes on from the summary"),
]


def rpc_error(error: CrushError) -> RequestError:
    return RequestError(error.code, " ".join(error.message.split()), {"reason": error.reason})


@attrs.define(eq=False)
class AcpSession:
    id: str
    workspace: Workspace
    stream: SessionStream
    mode: str = ASK
    model: str | None = None  # the model value chosen for this session, "provider:model"
    mcp_servers: list[dict[str, Any]] = attrs.Factory(list)
    mcp: SessionServers | None = None  # connected for this session only
    rejected: set[tuple[str, str]] = attrs.Factory(set)  # (tool, action) answered reject_always
    run_modes: dict[object, str] = attrs.Factory(dict)  # runId -> the mode its turn started with


@attrs.define(eq=False)
class Waiter:
    """A `session/prompt` waiting for its run."""

    future: asyncio.Future[dict[str, Any]]
    steps: int = 0
    error_code: str | None = None


class AcpAgent:
    def __init__(self, settings: InitOptions, write: Callable[[dict[str, Any]], None]) -> None:
        self._write = write
        self.conn: AgentSideConnection | None = None
        self.capabilities = ClientCapabilities()  # the editor's files are ACP's fs/* (`files`)
        self.backend = Backend(self)
        self.backend.init_options = settings
        self.sessions: dict[str, AcpSession] = {}
        self.waiters: dict[object, Waiter] = {}  # by runId
        self._asked: dict[tuple[object, object], Any] = {}  # (session, toolCallId) -> id of the pending request
        self.closed: set[str] = set()  # sessions closed by session/close: no more updates until loaded again
        # --yolo is the sessions' default mode here, not the workspace's rule, so that a
        # session switched to "ask" asks (the mode decides inside the workspace, as --yolo would).
        self.default_mode = ALLOW_ALL if settings.permissions.mode == "allow" else ASK
        if settings.permissions.mode == "allow":
            settings.permissions.mode = "ask"
        self.files: Any = None  # `tools.base.Files` once initialize says the client serves fs/*
        # The model each workspace opened with (from the flags or crush.json), by URI: (value, name, config).
        # agent/models stops listing it once another is chosen; it stays a choice here.
        self._initial_models: dict[str, tuple[str, str, ModelConfig]] = {}

    def on_connect(self, conn: AgentSideConnection) -> None:
        self.conn = conn

    def observe(self, event: Any) -> None:
        """The SDK's stream observer: notes the JSON-RPC id of each permission request we send."""
        message = event.message
        if event.direction.value == "outgoing" and message.get("method") == "session/request_permission":
            params = message.get("params") or {}
            self._asked[(params.get("sessionId"), (params.get("toolCall") or {}).get("toolCallId"))] = message["id"]

    # ------------------------------------------------------------------ backend.Client
    def send(self, body: dict[str, Any]) -> None:
        session_id = body.get("sessionId")
        session = self._attached(session_id, body.get("workspace"))
        if session is not None:
            self._track_run(session, body)
            for update in session.stream.translate(body, self._context_window(session.workspace)):
                self.notify(session.id, update)
        if body.get("type") == "run_complete":  # a closed session's prompt is still answered
            if session is not None:
                session.run_modes.pop(body.get("runId"), None)
            waiter = self.waiters.pop(body.get("runId"), None)
            if waiter is not None and not waiter.future.done():
                waiter.future.set_result(body)

    def _track_run(self, session: AcpSession, body: dict[str, Any]) -> None:
        kind, waiter = body.get("type"), self.waiters.get(body.get("runId"))
        if kind == "run_started":  # mode changes apply from the next turn on
            session.run_modes[body["runId"]] = session.mode
        elif waiter is None:
            return
        elif kind == "message_finished":
            waiter.steps += 1
        elif kind == "agent_error" and not body.get("willRetry"):
            waiter.error_code = body.get("code")

    def notify(self, session_id: str, update: Any) -> None:
        """One `session/update`: a schema type, or a text chunk already in wire form (`updates.chunk_wire`)."""
        if isinstance(update, dict):
            params = {"sessionId": session_id, "update": update}
        else:
            params = schema.SessionNotification(session_id=session_id, update=update).model_dump(
                mode="json", by_alias=True, exclude_none=True)
        self._write({"jsonrpc": "2.0", "method": "session/update", "params": params})

    def can_ask(self) -> bool:
        return self.conn is not None

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """backend.Client: ACP has none of crush-ls' server-to-client requests (`capabilities` says so)."""
        raise ClientDeclined(f"{method} is not part of ACP")

    async def ask(self, params: dict[str, Any]) -> Any:
        """`agent/requestPermission` as `session/request_permission`, or answered by the session's mode."""
        permission = params["permission"]
        session = self._attached(params.get("sessionId"), params.get("workspace"))
        if session is None or self.conn is None:
            return {"decision": "deny"}
        key = (permission["tool"], permission["action"])
        auto = self._auto_decision(session, params.get("runId"), permission)
        if auto is not None:
            return {"decision": auto}
        if key in session.rejected:
            return {"decision": "deny"}
        call = updates.permission_call(permission["toolCallId"], permission["tool"], permission.get("input"),
                                       session.workspace.root)
        try:
            answer = await self.conn.request_permission(session_id=session.id, tool_call=call,
                                                        options=PERMISSION_OPTIONS)
        except asyncio.CancelledError:  # the run was cancelled: withdraw the question
            request_id = self._asked.pop((session.id, permission["toolCallId"]), None)
            if request_id is not None:
                self._write({"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": request_id}})
            raise
        finally:
            self._asked.pop((session.id, permission["toolCallId"]), None)
        outcome = answer.outcome
        if not isinstance(outcome, schema.AllowedOutcome):  # cancelled: a deny; the run goes on
            return {"decision": "deny"}
        if outcome.option_id == "reject_always":  # clients often forget "always": crush-ls remembers
            session.rejected.add(key)
        return {"decision": DECISIONS.get(outcome.option_id, "deny")}

    @staticmethod
    def _auto_decision(session: AcpSession, run_id: str | None, permission: dict[str, Any]) -> str | None:
        mode = session.run_modes.get(run_id or "", session.mode)
        path = permission.get("path")
        # No path (an MCP tool): the permission rules count it as inside the workspace.
        inside = path is None or is_inside(session.workspace.root, Path(path))
        if not inside:
            return None  # outside the workspace a person always decides
        if mode == ALLOW_ALL or (mode == ALLOW_EDITS and permission.get("action") == "write"):
            return "allow"
        return None

    # ------------------------------------------------------------------ sessions
    def _attached(self, session_id: str | None, workspace_uri: str | None = None) -> AcpSession | None:
        """The ACP state of a session of an open workspace (made on first use); None once closed."""
        if not session_id or session_id in self.closed:
            return None
        session = self.sessions.get(session_id)
        if session is not None:
            return session
        for workspace in self.backend.workspaces.values():
            if workspace_uri not in (None, workspace.uri) or workspace.store.get_session(session_id) is None:
                continue
            return self._attach(session_id, workspace)
        return None

    def _attach(self, session_id: str, workspace: Workspace) -> AcpSession:
        session = self.sessions.get(session_id)
        if session is None:
            session = AcpSession(session_id, workspace, SessionStream(workspace.root), mode=self.default_mode)
            session.stream.title = workspace.store.sessions[session_id].title
            self.sessions[session_id] = session
        return session

    def _session(self, session_id: str) -> AcpSession:
        session = self._attached(session_id)
        if session is None and session_id in self.closed:
            raise rpc_error(SessionNotFound(f"Session {session_id!r} was closed: load or resume it first."))
        if session is None:
            raise rpc_error(SessionNotFound(f"Session {session_id!r} does not exist: create it with session/new."))
        return session

    def _workspace(self, cwd: str) -> Workspace:
        if not os.path.isabs(cwd):
            raise rpc_error(InvalidParams(f"cwd must be an absolute path, got {cwd!r} @ params.cwd"))
        uri = Path(cwd).as_uri()
        workspace = self.backend.open_workspace(uri)
        if workspace is None:
            why = self.backend.open_errors.get(uri) or "not a directory"
            raise rpc_error(WorkspaceNotFound(f"Cannot open {cwd} as a workspace: {why}"))
        if workspace.uri not in self._initial_models:
            info = workspace.model_info()
            if info is not None:
                config = workspace.settings.model or ModelConfig(provider=info.provider, model=info.model)  # type: ignore[arg-type]
                self._initial_models[workspace.uri] = (f"{info.provider}:{info.model}", info.name or info.model, config)
        return workspace

    def _context_window(self, workspace: Workspace) -> int:
        info = workspace.model_info()
        return info.context_window if info is not None else 0

    async def _setup(self, session: AcpSession, mcp_servers: list[Any] | None) -> None:
        """Connect the session's MCP servers (those of an earlier setup are closed first)."""
        session.mcp_servers = [server_config(s) for s in mcp_servers or []]
        old, session.mcp = session.mcp, None
        if old is not None:
            await old.close()
        if session.mcp_servers:
            session.mcp = SessionServers(session.mcp_servers, session.workspace.root)
            await session.mcp.ready()  # the first prompt already has the tools

    def session_tools(self, session_id: str) -> dict[str, Any]:
        """backend.Client: the tools of the session's own MCP servers."""
        session = self.sessions.get(session_id)
        return session.mcp.tools() if session is not None and session.mcp is not None else {}

    async def close_sessions(self) -> None:
        """End of input: stop every session's MCP servers."""
        servers = [s.mcp for s in self.sessions.values() if s.mcp is not None]
        await asyncio.gather(*(m.close() for m in servers), return_exceptions=True)

    # ------------------------------------------------------------------ ACP: lifecycle
    async def initialize(self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None,
                         **_: Any) -> schema.InitializeResponse:
        if client_capabilities is not None and not isinstance(client_capabilities, schema.ClientCapabilities):
            # The SDK hands on what it could not validate (a list, a string): refuse it as params, not a crash.
            raise RequestError(-32602, "initialize: clientCapabilities must be an object",
                               {"reason": "invalid_params"})
        fs = client_capabilities.fs if client_capabilities is not None else None
        if fs is not None and (fs.read_text_file or fs.write_text_file):
            from .files import EditorFiles

            self.files = EditorFiles(self, read=bool(fs.read_text_file), write=bool(fs.write_text_file))
        return schema.InitializeResponse(
            protocol_version=1,  # the only version crush-ls speaks; a client asking for another decides
            agent_capabilities=schema.AgentCapabilities(
                load_session=True,
                prompt_capabilities=schema.PromptCapabilities(embedded_context=True, image=self._takes_images()),
                mcp_capabilities=schema.McpCapabilities(http=True),
                session_capabilities=schema.SessionCapabilities(
                    list=schema.SessionListCapabilities(), resume=schema.SessionResumeCapabilities(),
                    close=schema.SessionCloseCapabilities(),
                ),
            ),
            auth_methods=[],
            agent_info=schema.Implementation(name="crush-ls", title="crush-ls", version=__version__),
        )

    def _takes_images(self) -> bool:
        model = self.backend.init_options.model
        return model is not None and model.provider in ("openai", "anthropic")

    async def authenticate(self, method_id: str, **_: Any) -> None:
        return None  # no auth methods: keys come from the configuration

    # ------------------------------------------------------------------ ACP: sessions
    async def new_session(self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any) -> schema.NewSessionResponse:
        workspace = self._workspace(cwd)
        try:
            created = await self.backend.create_session(workspace.uri, None)  # answered once stored
        except CrushError as exc:
            raise rpc_error(exc) from exc
        session = self._attach(created["id"], workspace)
        await self._setup(session, mcp_servers)
        asyncio.get_running_loop().call_soon(self._announce_commands, session.id)  # after the answer
        return schema.NewSessionResponse(session_id=session.id, **self._config_state(session))

    def _announce_commands(self, session_id: str) -> None:
        self.notify(session_id, schema.AvailableCommandsUpdate(
            session_update="available_commands_update", available_commands=COMMANDS))

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None,
                            **_: Any) -> schema.ListSessionsResponse:
        workspaces = self._listed_workspaces(cwd)
        listed = [
            (s.updated_at, schema.SessionInfo(session_id=s.id, cwd=str(w.root), title=s.title,
                                              updated_at=w.session_wire(s)["updatedAt"]))
            for w in workspaces for s in w.store.list_sessions()
        ]
        listed.sort(key=lambda pair: pair[0], reverse=True)
        return schema.ListSessionsResponse(sessions=[info for _, info in listed])

    def _listed_workspaces(self, cwd: str | None) -> list[Workspace]:
        if cwd is not None:
            if not os.path.isabs(cwd) or not os.path.isdir(cwd):
                return []
            return [self._workspace(cwd)]
        listed = list(self.backend.workspaces.values())
        here = os.getcwd()
        if (Path(here) / ".crush" / DB_NAME).exists() and not any(w.root == Path(here).resolve() for w in listed):
            listed.append(self._workspace(here))  # the folder the editor started us in, if it has sessions
        return listed

    async def load_session(self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None,
                           **_: Any) -> schema.LoadSessionResponse:
        session, messages = await self._reopen(cwd, session_id, mcp_servers)
        session.stream = SessionStream(session.workspace.root)  # the replay is a fresh view
        self._replay(session, messages)
        self._announce_commands(session.id)  # before the answer: nothing of a load may follow it
        return schema.LoadSessionResponse(**self._config_state(session))

    def _replay(self, session: AcpSession, messages: list[dict[str, Any]]) -> None:
        for kind, body in replay_bodies(messages):
            if kind == "user":
                self.notify(session.id, updates.message_chunk("user", body["text"], body["messageId"]))
                continue
            for update in session.stream.translate(body, 0):
                self.notify(session.id, update)
        for update in session.stream.release_held():
            self.notify(session.id, update)
        wire = session.workspace.session_wire(session.workspace.store.sessions[session.id])
        for update in session.stream.translate({"type": "session_updated", "session": wire},
                                               self._context_window(session.workspace)):
            self.notify(session.id, update)

    async def resume_session(self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None,
                             **_: Any) -> schema.ResumeSessionResponse:
        session, _messages = await self._reopen(cwd, session_id, mcp_servers)
        asyncio.get_running_loop().call_soon(self._announce_commands, session.id)  # after the answer, no replay
        return schema.ResumeSessionResponse(**self._config_state(session))

    async def _reopen(self, cwd: str, session_id: str,
                      mcp_servers: list[Any] | None) -> tuple[AcpSession, list[dict[str, Any]]]:
        """A stored session of the workspace at `cwd`, with its MCP servers and its last model."""
        workspace = self._workspace(cwd)
        try:
            messages = (await self.backend.session_messages(workspace.uri, session_id))["messages"]
        except CrushError as exc:
            raise rpc_error(exc) from exc
        self.closed.discard(session_id)
        session = self._attach(session_id, workspace)
        await self._setup(session, mcp_servers)
        last = next((m for m in reversed(messages) if m["role"] == "assistant" and m.get("provider")), None)
        if last is not None and f"{last['provider']}:{last.get('model')}" in self._model_choices(workspace):
            session.model = f"{last['provider']}:{last.get('model')}"
            self._use_model(session)
        return session, messages

    async def close_session(self, session_id: str, **_: Any) -> None:
        session = self._session(session_id)
        self._cancel(session)  # as session/cancel would
        self.sessions.pop(session_id, None)
        self.closed.add(session_id)
        if session.mcp is not None:
            await session.mcp.close()
        return None

    # ------------------------------------------------------------------ ACP: prompts
    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> schema.PromptResponse:
        session = self._session(session_id)
        workspace = session.workspace
        text, attachments = prompt_input(prompt, workspace.root)
        try:
            if text.strip() == "/summarize" and not attachments:
                accepted = self.backend.summarize(workspace.uri, session.id)
            else:
                self._use_model(session)
                accepted = self.backend.send_message(SendMessageParams(
                    workspace=workspace.uri, session_id=session.id, prompt=text,
                    attachments=_attachments(attachments)))
        except CrushError as exc:
            raise rpc_error(exc) from exc
        waiter = self.waiters[accepted["runId"]] = Waiter(asyncio.get_running_loop().create_future())
        body = await waiter.future
        return schema.PromptResponse(stop_reason=self._stop_reason(body, waiter))

    @staticmethod
    def _stop_reason(body: dict[str, Any], waiter: Waiter) -> schema.StopReason:
        finish = body.get("finishReason")
        if finish == "error":
            message = " ".join(str(body.get("error") or "the run failed").split())
            raise RequestError(-32603, message, {"reason": waiter.error_code or "internal"})
        if finish == "unknown":
            return "max_turn_requests" if waiter.steps >= MAX_STEPS else "end_turn"
        return updates.STOP_REASONS.get(finish or "", "end_turn")

    async def cancel(self, session_id: str, **_: Any) -> None:
        session = self._attached(session_id)
        if session is not None:
            self._cancel(session)

    def _cancel(self, session: AcpSession) -> None:
        try:
            self.backend.cancel(CancelParams(workspace=session.workspace.uri, session_id=session.id))
        except CrushError as exc:
            log.info("session/cancel of %s: %s", session.id, exc.message)

    # ------------------------------------------------------------------ ACP: modes and config options
    def _config_state(self, session: AcpSession) -> dict[str, Any]:
        return {
            "modes": schema.SessionModeState(current_mode_id=session.mode, available_modes=[
                schema.SessionMode(id=mode, name=name, description=about) for mode, (name, about) in MODES.items()
            ]),
            "config_options": self._config_options(session),
        }

    def _config_options(self, session: AcpSession) -> list[Any]:
        options: list[Any] = []
        models = self._model_choices(session.workspace)
        if models:
            current = session.model or next(iter(models))
            options.append(schema.SessionConfigOptionSelect(
                type="select", id="model", name="Model", category="model", current_value=current,
                options=[schema.SessionConfigSelectOption(value=value, name=name) for value, name in models.items()],
            ))
        options.append(schema.SessionConfigOptionSelect(
            type="select", id="mode", name="Permissions", category="mode", current_value=session.mode,
            options=[schema.SessionConfigSelectOption(value=mode, name=name, description=about)
                     for mode, (name, about) in MODES.items()],
        ))
        return options

    async def set_session_mode(self, mode_id: str, session_id: str, **_: Any) -> None:
        session = self._session(session_id)
        self._set_mode(session, mode_id)
        self.notify(session.id, schema.ConfigOptionUpdate(session_update="config_option_update",
                                                          config_options=self._config_options(session)))

    async def set_config_option(self, config_id: str, session_id: str, value: str | bool,
                                **_: Any) -> schema.SetSessionConfigOptionResponse:
        session = self._session(session_id)
        if config_id == "mode":
            self._set_mode(session, value)
            self.notify(session.id, schema.CurrentModeUpdate(session_update="current_mode_update",
                                                             current_mode_id=session.mode))
        elif config_id == "model":
            self._set_model(session, value)
        else:
            raise rpc_error(InvalidParams(f"unknown config option {config_id!r} @ params.configId"))
        return schema.SetSessionConfigOptionResponse(config_options=self._config_options(session))

    @staticmethod
    def _set_mode(session: AcpSession, mode: Any) -> None:
        if mode not in MODES:
            allowed = ", ".join(repr(m) for m in MODES)
            raise rpc_error(InvalidParams(f"{mode!r} is not one of {allowed} @ params.value"))
        session.mode = mode  # the running turn keeps its mode; the next one uses this

    def _set_model(self, session: AcpSession, value: Any) -> None:
        if not isinstance(value, str) or value not in self._model_choices(session.workspace):
            raise rpc_error(InvalidParams(f"{value!r} is not a model of agent/models @ params.value"))
        session.model = value
        self._use_model(session)

    def _use_model(self, session: AcpSession) -> None:
        """Make the session's model the workspace's (models are per workspace: the next run uses it)."""
        info = session.workspace.model_info()
        if session.model is None or (info is not None and f"{info.provider}:{info.model}" == session.model):
            return
        initial = self._initial_models.get(session.workspace.uri)
        if initial is not None and initial[0] == session.model:  # with its script, base URL, key...
            known = {f.name for f in attrs.fields(ModelSelection)}
            given = attrs.asdict(initial[2], recurse=False)
            selection = ModelSelection(**{k: v for k, v in given.items() if k in known})
        else:  # completed from crush.json by the backend
            provider, _, model = session.model.partition(":")
            selection = ModelSelection(provider=provider, model=model or None)  # type: ignore[arg-type]
        try:
            self.backend.set_model(session.workspace.uri, selection)
        except CrushError as exc:
            raise rpc_error(exc) from exc

    def _model_choices(self, workspace: Workspace) -> dict[str, str]:
        """value ("provider:model") -> name, the workspace's current model first (agent/models)."""
        listed = self.backend.models(workspace.uri)
        choices = {f"{m['provider']}:{m['model']}": m["name"] for m in listed["available"]}
        initial = self._initial_models.get(workspace.uri)
        if initial is not None:
            choices.setdefault(initial[0], initial[1])
        return choices


def _attachments(raw: list[dict[str, Any]]) -> list[Attachment]:
    return [Attachment(path=a.get("path"), uri=a.get("uri"), mime_type=a.get("mimeType"), text=a.get("text"),
                       content=a.get("content")) for a in raw]


__all__ = ["AcpAgent", "AcpSession"]
