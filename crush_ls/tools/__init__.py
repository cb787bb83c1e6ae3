"""The built-in tools, by name (Crush's names and inputs, PROTOCOL section 4).

The tool modules are imported on first use, not with the package: start-up
time matters, a workspace needs its tools only when a turn runs, and the
search worker (worker.py) imports only the few modules it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..permissions import Access
    from .base import Tool, ToolContext, ToolResult
    from .diagnostics import DiagnosticsSource
    from .paths import ToolInputError

_EXPORTS = {"Access": "base", "Tool": "base", "ToolContext": "base", "ToolResult": "base",
            "ToolInputError": "paths"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def builtin_tools(diagnostics: DiagnosticsSource | None = None) -> dict[str, Tool]:
    """Crush's tools; `diagnostics` only with a client that gives the editor's (agent/diagnostics)."""
    from .bash import BashTool
    from .edit import EditTool
    from .fetch import FetchTool
    from .glob import GlobTool
    from .grep import GrepTool
    from .ls import LsTool
    from .multiedit import MultiEditTool
    from .todos import TodosTool
    from .view import ViewTool
    from .write import WriteTool

    tools: list[Tool] = [
        ViewTool(), LsTool(), GlobTool(), GrepTool(), WriteTool(), EditTool(), MultiEditTool(),
        BashTool(), FetchTool(), TodosTool(),
    ]
    if diagnostics is not None:
        from .diagnostics import DiagnosticsTool

        tools.append(DiagnosticsTool(diagnostics))
    return {tool.name: tool for tool in sorted(tools, key=lambda t: t.name)}


__all__ = ["Access", "Tool", "ToolContext", "ToolInputError", "ToolResult", "builtin_tools"]
