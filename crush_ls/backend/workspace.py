"""One open workspace folder: its settings, storage, agent and background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..agent import Agent
from ..mcp import McpManager
from ..protocol import shapes
from ..protocol.encode import session_to_wire
from ..protocol.errors import AgentNotInitialized, CrushError, SessionMissing, SessionNotFound, WorkspaceClosing
from ..providers.base import ModelInfo
from ..settings import Settings
from ..storage import Session, Store


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise ValueError(f"not a file URI: {uri}")
    return Path(unquote(parsed.path if parsed.scheme else uri))


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
        self.rewinding: set[str] = set()  # sessions an agent/rewind or agent/unrewind is changing: no prompts

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

    def session_wire(self, session: Session) -> shapes.Session:
        return session_to_wire(session, self.agent.coordinator.is_busy(session.id))

    def model_info(self) -> ModelInfo | None:
        return self.agent.provider().info if self.model_error is None else None

    def require_model(self) -> None:
        """Refuse what needs a model when the workspace has none that works."""
        if self.model_error is not None:
            raise AgentNotInitialized(self.model_error.message)

    def require_open(self, refused: str = "") -> None:
        """Refuse what would start work in a workspace that is closing (`refused` says what)."""
        if self.closing:
            raise WorkspaceClosing(f"Workspace {self.uri} is closing{refused}.")
