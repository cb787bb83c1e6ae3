"""Workspaces, their lifetime and their runs: the transport-free backend.

The server module translates requests into calls here. Methods that change
state do so synchronously, the moment the request arrives (so requests take
effect in the order they arrive); where storage must be awaited they return
an awaitable for the rest. Every run belongs to its workspace: only
`agent/cancel`, `agent/clearQueue`, `session/delete`, closing the workspace,
`shutdown` or end of input end it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import uuid
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import attrs

from .agent import Agent
from .mcp import McpManager, server_configs
from .permissions import Permissions
from .protocol.encode import message_to_wire, model_to_wire, session_to_wire
from .protocol.errors import (
    AgentNotInitialized,
    CrushError,
    EmptyPrompt,
    InvalidParams,
    SessionBusy,
    SessionMissing,
    SessionNotFound,
    StorageFailed,
    WorkspaceClosing,
    WorkspaceNotFound,
)
from .protocol.params import CancelParams, ModelSelection, SendMessageParams
from .providers import create_provider, local_model_available
from .providers.base import ModelInfo, Provider
from .settings import InitOptions, ModelConfig, Settings, load_settings
from .storage import DB_NAME, Session, Store, prepare_data_directory
from .tools import builtin_tools

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


class Client(Protocol):
    """What the backend needs from the transport.

    A client may also have `files` (`tools.base.Files`): the file tools then read
    and write through it (the ACP adapter, when the editor serves `fs/*`).
    """

    def send(self, body: dict[str, Any]) -> None:
        """Send one `agent/notification` (the transport numbers it)."""

    def can_ask(self) -> bool:
        """The client declared it answers `agent/requestPermission`."""

    async def ask(self, params: dict[str, Any]) -> Any:
        """Send `agent/requestPermission`; cancelling the await withdraws it."""


class WorkspaceAsker:
    """The permission asker of one workspace: adds the workspace to the request."""

    def __init__(self, client: Client, uri: str) -> None:
        self._client = client
        self._uri = uri

    def can_ask(self) -> bool:
        return self._client.can_ask()

    async def ask(self, params: dict[str, Any]) -> Any:
        return await self._client.ask({"workspace": self._uri, **params})


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise ValueError(f"not a file URI: {uri}")
    return Path(unquote(parsed.path if parsed.scheme else uri))


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text)  # as the turn decodes it
    except ValueError:  # binascii.Error
        return False
    return True


class Workspace:
    """One open folder: its settings, storage, agent and background tasks."""

    def __init__(self, uri: str, root: Path, settings: Settings, store: Store, agent: Agent,
                 model_error: CrushError | None, mcp: McpManager) -> None:
        self.uri = uri
        self.mcp = mcp
        self.root = root
        self.settings = settings
        self.store = store
        self.agent = agent
        self.model_error = model_error
        self.closing = False
        self.close_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start a background task owned by this workspace (kept until it ends)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def session(self, session_id: str | None) -> Session:
        if session_id is None or session_id == "":
            raise SessionMissing("sessionId is missing: create a session with session/create first.")
        session = self.store.get_session(session_id)
        if session is None:
            raise SessionNotFound(f"Session {session_id!r} does not exist in workspace {self.uri}.")
        return session

    def session_wire(self, session: Session) -> dict[str, Any]:
        return session_to_wire(session, self.agent.coordinator.is_busy(session.id))

    def model_info(self) -> ModelInfo | None:
        return self.agent.provider().info if self.model_error is None else None


class Backend:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.init_options = InitOptions()
        self.workspaces: dict[str, Workspace] = {}  # by URI as first sent
        self._aliases: dict[str, Workspace] = {}  # every URI naming an open workspace
        self._by_root: dict[Path, Workspace] = {}
        self.pending_folders: list[str] = []  # named by initialize, opened at initialized
        self.open_errors: dict[str, str] = {}  # why a folder could not be opened, by URI

    # ------------------------------------------------------------------ workspaces
    def open_workspace(self, uri: str) -> Workspace | None:
        """Open (or alias) the workspace of a folder URI; None when it cannot be opened."""
        if uri in self._aliases:
            return self._reopen_later(uri, self._aliases[uri])
        try:
            root = Path(os.path.realpath(uri_to_path(uri)))
        except ValueError as exc:
            log.error("cannot open workspace %s: %s", uri, exc)
            return None
        if root in self._by_root:
            if self._by_root[root].closing:
                return self._reopen_later(uri, self._by_root[root])
            self._aliases[uri] = self._by_root[root]
            return self._by_root[root]
        if not root.is_dir():
            log.error("cannot open workspace %s: %s is not a directory", uri, root)
            return None
        try:
            settings = load_settings(root, self.init_options)
            data_dir = prepare_data_directory(root, settings.data_directory)
            store = Store.open(data_dir / DB_NAME, lambda session_id, error: self._storage_failed(uri, session_id, error))
        except Exception as exc:  # noqa: BLE001 - one bad folder must not keep the others closed
            reason = exc.message if isinstance(exc, CrushError) else f"{type(exc).__name__}: {exc}"
            log.error("cannot open workspace %s: %s", uri, reason)
            self.open_errors[uri] = reason
            return None
        self.open_errors.pop(uri, None)
        provider, model_error = self._make_provider(settings.model, root)
        workspace: Workspace
        mcp = McpManager(server_configs(settings.crush.mcp if settings.crush else {}, settings.mcp), root,
                         lambda body: self.client.send({**body, "workspace": uri}))
        agent = Agent(
            workspace_uri=uri, root=root, settings=settings, store=store, provider=provider,
            small_provider=lambda: self._small_provider(workspace), tools=builtin_tools, extra_tools=mcp.tools,
            permissions=Permissions(settings.permissions, WorkspaceAsker(self.client, uri)),
            send=self.client.send, spawn=lambda coro: workspace.spawn(coro),
            files=getattr(self.client, "files", None),  # a client that edits the editor's buffers (ACP)
            session_tools=getattr(self.client, "session_tools", None),  # per-session MCP servers (ACP)
        )
        workspace = Workspace(uri, root, settings, store, agent, model_error, mcp)
        self.workspaces[uri] = self._aliases[uri] = self._by_root[root] = workspace
        mcp.start()  # in the background: nothing waits for a server
        log.info("opened workspace %s (%d sessions)", uri, len(store.sessions))
        return workspace

    def _storage_failed(self, uri: str, session_id: str | None, error: StorageFailed) -> None:
        """A write nobody waited for failed: tell the session's client (its run's, when one runs)."""
        workspace = self._aliases.get(uri)
        body = {"type": "agent_error", "message": error.message, "code": "internal", "retryable": False,
                "willRetry": False}
        run = workspace.agent.coordinator.active_run(session_id) if workspace and session_id else None
        if run is not None and not run.events.completed:
            run.events.emit(body)
        else:
            self.client.send({**body, "workspace": uri, "sessionId": session_id})

    def _reopen_later(self, uri: str, workspace: Workspace) -> Workspace | None:
        """A folder added again while its workspace still closes opens once that is done."""
        if not workspace.closing:
            return workspace
        if uri not in self.pending_folders:
            self.pending_folders.append(uri)
        return None

    @staticmethod
    def _make_provider(config: ModelConfig | None, root: Path) -> tuple[Any, CrushError | None]:
        try:
            return create_provider(config, root), None
        except CrushError as exc:
            log.warning("no usable model: %s", exc.message)
            return None, exc

    def _small_provider(self, workspace: Workspace) -> Provider | None:
        if workspace.settings.small_model is None:
            return None
        provider, _error = self._make_provider(workspace.settings.small_model, workspace.root)
        return provider

    def open_pending(self) -> None:
        pending, self.pending_folders = self.pending_folders, []
        for uri in pending:
            self.open_workspace(uri)

    def workspace(self, uri: str | None) -> Workspace:
        self.open_pending()
        if uri is None:
            if len(self.workspaces) == 1:
                return next(iter(self.workspaces.values()))
            opened = ", ".join(self.workspaces) or "none"
            raise WorkspaceNotFound(f"Name the workspace: {len(self.workspaces)} are open ({opened}).")
        workspace = self._aliases.get(uri)
        if workspace is None and uri in self.open_errors:
            raise WorkspaceNotFound(f"Workspace {uri!r} could not be opened: {self.open_errors[uri]}")
        if workspace is None or workspace.uri not in self.workspaces:
            raise WorkspaceNotFound(f"Workspace {uri!r} is not open. Open it as a workspace folder first.")
        return workspace

    def close_workspace(self, uri: str, timeout: float = CLOSE_TIMEOUT) -> Awaitable[None]:
        """Close: refuse new prompts at once, cancel every run, wait for them, flush storage."""
        workspace = self._aliases.get(uri)
        self.open_errors.pop(uri, None)
        if uri in self.pending_folders:  # added again while closing, and removed again
            self.pending_folders.remove(uri)
        if workspace is None:
            return asyncio.sleep(0)
        if workspace.close_task is None:
            workspace.closing = True
            workspace.close_task = asyncio.get_running_loop().create_task(self._close(workspace, timeout))
        return asyncio.shield(workspace.close_task)

    async def _close(self, workspace: Workspace, timeout: float) -> None:
        workspace.agent.coordinator.cancel_all()
        for task in workspace.tasks:
            task.cancel()
        running = workspace.agent.coordinator.workers() + list(workspace.tasks)
        mcp_closed = asyncio.ensure_future(workspace.mcp.close())  # alongside the runs: both are bounded
        if running:
            _done, pending = await asyncio.wait(running, timeout=timeout)
            for task in pending:
                log.error("workspace %s: %s did not stop within %.1fs", workspace.uri, task.get_name(), timeout)
        await workspace.store.flush()
        await workspace.store.close()
        await workspace.agent.close_providers()
        await mcp_closed
        for alias in [a for a, w in self._aliases.items() if w is workspace]:
            del self._aliases[alias]
        self.workspaces.pop(workspace.uri, None)
        self._by_root.pop(workspace.root, None)
        log.info("closed workspace %s", workspace.uri)
        self.open_pending()  # a folder added again meanwhile

    def close_all(self, timeout: float = CLOSE_TIMEOUT) -> Awaitable[Any]:
        """Start closing every workspace now; the awaitable ends when all are closed."""
        self.pending_folders = []
        return asyncio.gather(*(self.close_workspace(uri, timeout) for uri in list(self.workspaces)))

    # ------------------------------------------------------------------ agent/*
    def send_message(self, params: SendMessageParams) -> dict[str, Any]:
        for index, attachment in enumerate(params.attachments):  # malformed params fail now, not in the run
            if attachment.content is not None and not _is_base64(attachment.content):
                raise InvalidParams(
                    f"agent/sendMessage: attachment content must be base64 @ params.attachments[{index}].content")
        workspace = self.workspace(params.workspace)
        coordinator = workspace.agent.coordinator
        if params.run_id is not None and params.run_id in coordinator.live_run_ids:
            raise InvalidParams(f"agent/sendMessage: runId {params.run_id!r} is already used by a run that has not completed @ params.runId")
        if workspace.model_error is not None:
            raise AgentNotInitialized(workspace.model_error.message)
        attachments = [a.to_dict() for a in params.attachments]
        has_text_attachment = any(a.text is not None or (a.mime_type or "").startswith("text/") for a in params.attachments)
        if (params.prompt is None or not params.prompt.strip()) and not has_text_attachment:
            raise EmptyPrompt("The prompt is empty: send some text (or a text attachment).")
        session = workspace.session(params.session_id)
        if workspace.closing:
            raise WorkspaceClosing(f"Workspace {workspace.uri} is closing; no new prompts are accepted.")
        run = workspace.agent.new_run(
            session.id, params.run_id or uuid.uuid4().hex, params.prompt or "", attachments, params.mode
        )
        queued, position = coordinator.accept(run)
        return {"accepted": True, "runId": run.id, "sessionId": session.id, "queued": queued, "position": position}

    def cancel(self, params: CancelParams) -> dict[str, Any]:
        workspace = self.workspace(params.workspace)
        session = workspace.session(params.session_id)
        return {"canceled": workspace.agent.coordinator.cancel(session.id, params.run_id)}

    def status(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        coordinator = workspace.agent.coordinator
        info = workspace.model_info()
        pending = list(workspace.agent.permissions.pending.values())
        if session_id is None:
            busy, active_id, queued = coordinator.any_busy(), None, coordinator.all_queued()
        else:
            session = workspace.session(session_id)
            active = coordinator.active_run(session.id)
            busy, active_id, queued = active is not None, active.id if active else None, coordinator.queued(session.id)
            run_ids = {active_id} | {r.id for r in queued}
            pending = [p for p in pending if p.get("runId") in run_ids or p.get("sessionId") == session.id]
        return {
            "busy": busy,
            "activeRunId": active_id,
            "queued": [{"runId": r.id, "prompt": r.prompt} for r in queued],
            "pendingPermissions": [{k: v for k, v in p.items() if k not in ("sessionId", "runId")} for p in pending],
            "model": model_to_wire(info) if info else None,
        }

    def summarize(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        if workspace.model_error is not None:
            raise AgentNotInitialized(workspace.model_error.message)
        coordinator = workspace.agent.coordinator
        if coordinator.is_busy(session.id) or coordinator.line(session.id).waiting:
            raise SessionBusy(f"Session {session.id!r} is running a prompt; summarize it when it is idle.")
        if workspace.closing:
            raise WorkspaceClosing(f"Workspace {workspace.uri} is closing.")
        run = workspace.agent.new_summary_run(session.id, uuid.uuid4().hex)
        coordinator.accept(run)
        return {"accepted": True, "runId": run.id}

    def queued_prompts(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        queued = workspace.agent.coordinator.queued(workspace.session(session_id).id)
        return {"prompts": [r.prompt for r in queued], "runIds": [r.id for r in queued]}

    def clear_queue(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        return {"cleared": workspace.agent.coordinator.clear_queue(workspace.session(session_id).id)}

    def models(self, workspace_uri: str | None) -> dict[str, Any]:
        """The current model and every usable one: crush.json's, the current, the embedded one."""
        workspace = self.workspace(workspace_uri)
        current = workspace.model_info()
        candidates = [*workspace.settings.available_models]
        if local_model_available():
            candidates.append(ModelConfig(provider="local"))
        available = [current] if current else []
        seen = {(current.provider, current.model)} if current else set()
        for config in candidates:
            # Building a provider makes no connection; it is the one place that knows a
            # model's window and prices, and it fails for a model that cannot be used
            # (a key variable that is not set, a missing GGUF): those are left out.
            try:
                info = create_provider(config, workspace.root).info
            except CrushError as exc:
                log.info("agent/models: leaving out %s/%s: %s", config.provider, config.model, exc.message)
                continue
            if (info.provider, info.model) not in seen:
                seen.add((info.provider, info.model))
                available.append(info)
        return {"current": model_to_wire(current) if current else None, "available": [model_to_wire(i) for i in available]}

    def mcp_servers(self, workspace_uri: str | None) -> dict[str, Any]:
        """The workspace's MCP servers: name, type, state, error and tools (docs/mcp.md)."""
        return {"servers": self.workspace(workspace_uri).mcp.to_wire()}

    def set_model(self, workspace_uri: str | None, selection: ModelSelection) -> dict[str, Any]:
        """Switch the workspace's model for the next runs (a running turn keeps its own)."""
        workspace = self.workspace(workspace_uri)
        config = ModelConfig(**attrs.asdict(selection, recurse=False))  # the wire's model, as settings
        # A model named by provider and id gets its key, base URL, window and prices from crush.json.
        provider = create_provider(workspace.settings.complete_model(config), workspace.root)  # agent_not_initialized
        workspace.agent.set_provider(provider)
        workspace.model_error = None
        return {"current": model_to_wire(provider.info)}

    # ------------------------------------------------------------------ session/*
    def create_session(self, workspace_uri: str | None, title: str | None) -> Awaitable[dict[str, Any]]:
        workspace = self.workspace(workspace_uri)
        if workspace.closing:
            raise WorkspaceClosing(f"Workspace {workspace.uri} is closing.")
        session = workspace.store.new_session(title)  # requests behind this one see it at once

        async def answer() -> dict[str, Any]:
            try:
                await workspace.store.committed(session.id)  # answered once it is on disk
            except StorageFailed:
                workspace.store.forget_session(session.id)
                raise
            return workspace.session_wire(session)

        return answer()

    def list_sessions(self, workspace_uri: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        return {"sessions": [workspace.session_wire(s) for s in workspace.store.list_sessions()]}

    def get_session(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        return workspace.session_wire(workspace.session(session_id))

    def session_messages(self, workspace_uri: str | None, session_id: str | None) -> Awaitable[dict[str, Any]]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)

        async def read() -> dict[str, Any]:
            messages = await workspace.store.list_messages(session.id)
            return {"messages": [message_to_wire(m) for m in messages]}

        return read()

    def rename_session(self, workspace_uri: str | None, session_id: str | None, title: str | None) -> Awaitable[dict[str, Any]]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        if title is None or not title.strip():
            raise InvalidParams("session/rename: title must be a non-empty string @ params.title")
        session.title = title.strip()

        async def save() -> dict[str, Any]:
            workspace.store.save_session(session)
            await workspace.store.committed(session.id)
            workspace.agent.session_updated(session, None)
            return workspace.session_wire(session)

        return save()

    def delete_session(self, workspace_uri: str | None, session_id: str | None) -> Awaitable[dict[str, Any]]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        coordinator = workspace.agent.coordinator
        coordinator.cancel(session.id)
        worker = coordinator.line(session.id).worker
        workspace.store.forget_session(session.id)  # new requests see it gone at once

        async def delete() -> dict[str, Any]:
            if worker is not None:
                await asyncio.wait({worker}, timeout=CLOSE_TIMEOUT)
            workspace.store.delete_session(session.id)
            await workspace.store.committed(session.id)
            workspace.agent.permissions.forget_session(session.id)
            return {}

        return delete()
