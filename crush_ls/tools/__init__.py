"""The built-in tools, by name (Crush's names and inputs, PROTOCOL section 4)."""

from __future__ import annotations

from .base import Access, Tool, ToolContext, ToolInputError, ToolResult
from .ls import LsTool
from .view import ViewTool


def builtin_tools() -> dict[str, Tool]:
    tools: list[Tool] = [ViewTool(), LsTool()]
    return {tool.name: tool for tool in sorted(tools, key=lambda t: t.name)}


__all__ = ["Access", "Tool", "ToolContext", "ToolInputError", "ToolResult", "builtin_tools"]
