"""A temporary workspace, a real Store and a way to call one tool as the turn loop does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from crush_ls.storage import DB_NAME, Session, Store, prepare_data_directory
from crush_ls.tools import ToolContext, ToolInputError, ToolResult, builtin_tools

CallTool = Callable[..., Awaitable[ToolResult]]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace: nothing may be written here without a person's yes."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
async def store(workspace: Path) -> AsyncIterator[Store]:
    store = Store.open(prepare_data_directory(workspace, ".crush") / DB_NAME)
    yield store
    await store.close()


@pytest.fixture
async def session(store: Store) -> Session:
    return store.new_session("tools")


@pytest.fixture
def ctx(workspace: Path, store: Store, session: Session) -> ToolContext:
    return ToolContext(root=workspace, session_id=session.id, run_id="run-1", tool_call_id="call-1", store=store)


@pytest.fixture
def call(ctx: ToolContext) -> CallTool:
    """Run a tool like the turn loop: parse, then run; bad input becomes an error result."""

    async def call_tool(name: str, raw: Any, context: ToolContext | None = None) -> ToolResult:
        tool = builtin_tools()[name]
        try:
            return await tool.run(context or ctx, tool.parse(raw))
        except ToolInputError as exc:
            return ToolResult(str(exc), is_error=True)

    return call_tool
