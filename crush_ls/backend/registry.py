"""The workspaces of one connection and their lifetime.

A folder opens into a `Workspace` (settings, storage, agent); another URI
naming the same folder is an alias of it; a folder added again while its
workspace still closes opens once that is done. Closing refuses new prompts
at once, cancels every run, waits for them and flushes storage.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..agent import Agent
from ..mcp import McpManager, server_configs
from ..permissions import Permissions
from ..protocol.errors import CrushError, StorageFailed, WorkspaceNotFound
from ..providers import create_provider
from ..providers.base import Provider
from ..settings import InitOptions, ModelConfig, data_directory_path, load_settings
from ..storage import DB_NAME, Store, prepare_data_directory
from ..tools import builtin_tools
from ..tools.paths import is_inside, relative_display
from .client import Client, WorkspaceAsker
from .diagnostics import ClientDiagnostics
from .documents import Documents
from .editor import EditorFiles
from .workspace import Workspace, uri_to_path

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


class WorkspaceRegistry:
    """The open workspaces of one connection: open, alias, reopen, close."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.init_options = InitOptions()
        self.workspaces: dict[str, Workspace] = {}  # by URI as first sent
        self._aliases: dict[str, Workspace] = {}  # every URI naming an open workspace
        self._by_root: dict[Path, Workspace] = {}
        self.pending_folders: list[str] = []  # named by initialize, opened at initialized
        self.open_errors: dict[str, str] = {}  # why a folder could not be opened, by URI
        # The editor's open documents (LSP document sync) and the file tools' way to them.
        self.documents = Documents(self._in_a_workspace, client.capabilities.position_encoding)
        # The editor's diagnostics (agent/diagnostics), when the client declared it gives them.
        self.diagnostics = ClientDiagnostics(client, self._where) if client.capabilities.diagnostics else None
        self.editor = EditorFiles(client, self.documents, lambda: self.init_options.follow_agent, self._where,
                                  self.diagnostics)

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
            data_directory_path(root, settings)  # refuses one outside that the repository chose
            data_dir = prepare_data_directory(root, settings.data_directory)
            store = Store.open(data_dir / DB_NAME,
                               lambda session_id, error: self._storage_failed(uri, session_id, error))
        except Exception as exc:  # noqa: BLE001 - one bad folder must not keep the others closed
            reason = exc.message if isinstance(exc, CrushError) else f"{type(exc).__name__}: {exc}"
            log.error("cannot open workspace %s: %s", uri, reason)
            self.open_errors[uri] = reason
            return None
        self.open_errors.pop(uri, None)
        provider, model_error = self._make_provider(settings.model, root)
        workspace: Workspace
        mcp = McpManager(server_configs(settings.crush.mcp, settings.mcp), root,
                         lambda body: self.client.send({**body, "workspace": uri}))
        agent = Agent(
            workspace_uri=uri, root=root, settings=settings, store=store, provider=provider,
            small_provider=lambda: self._small_provider(workspace), tools=lambda: builtin_tools(self.diagnostics),
            extra_tools=mcp.tools, diagnostics=self.diagnostics,
            permissions=Permissions(settings.permissions, WorkspaceAsker(self.client, uri)),
            send=self.client.send, spawn=lambda coro: workspace.spawn(coro),
            # The editor's buffers: ACP's fs/* when the client serves them, else the LSP documents.
            files=getattr(self.client, "files", None) or self.editor,
            session_tools=getattr(self.client, "session_tools", None),  # per-session MCP servers (ACP)
        )
        workspace = Workspace(uri, root, settings, store, agent, model_error, mcp)
        self.workspaces[uri] = self._aliases[uri] = self._by_root[root] = workspace
        mcp.start()  # in the background: nothing waits for a server
        log.info("opened workspace %s (%d sessions)", uri, len(store.sessions))
        return workspace

    def _in_a_workspace(self, path: Path) -> bool:
        return any(is_inside(root, path) for root in self._by_root)

    def _where(self, path: Path) -> tuple[str, str]:
        """A file as a person reads it (relative to its workspace) and as the client names it
        (under the workspace's URI as the client sent it, which may be a symlink's)."""
        roots = [root for root in self._by_root if is_inside(root, path)]
        if not roots:
            return str(path), path.as_uri()
        root = max(roots, key=lambda r: len(r.parts))
        relative = path.relative_to(root).as_posix()
        return relative_display(root, path), f"{self._by_root[root].uri.rstrip('/')}/{quote(relative)}"

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
        provider: Provider | None = self._make_provider(workspace.settings.small_model, workspace.root)[0]
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
