"""The built-in tools, by name (Crush's names and inputs, PROTOCOL section 4).

The tool modules are imported on first use, not with the package: start-up
time matters, and a workspace needs its tools only when a turn runs.
"""

from __future__ import annotations

from .base import Access, Tool, ToolContext, ToolInputError, ToolResult


def builtin_tools() -> dict[str, Tool]:
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
    return {tool.name: tool for tool in sorted(tools, key=lambda t: t.name)}


__all__ = ["Access", "Tool", "ToolContext", "ToolInputError", "ToolResult", "builtin_tools"]
