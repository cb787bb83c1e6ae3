"""`ls`: a tree of a directory of the workspace (Crush's `ls`)."""

from __future__ import annotations

import asyncio
import fnmatch
import os
from pathlib import Path

import attrs

from .base import Tool, ToolContext, ToolInputError, ToolResult, resolve_path
from .schema import arg

MAX_ENTRIES = 1000
DEFAULT_DEPTH = 3
ALWAYS_SKIPPED = {".git", "node_modules", "__pycache__", ".venv", ".crush"}


@attrs.define
class LsInput:
    path: str | None = arg("Directory to list (default: the workspace)", default=None)
    ignore: list[str] = arg("Glob patterns to skip", factory=list)
    depth: int | None = arg(f"How deep to go (default {DEFAULT_DEPTH})", default=None)


def tree(root: Path, ignore: list[str], depth: int) -> tuple[list[str], bool]:
    if not root.exists():
        raise ToolInputError(f"directory not found: {root}")
    if not root.is_dir():
        raise ToolInputError(f"{root} is not a directory; use view")
    lines: list[str] = []

    def skipped(name: str) -> bool:
        return name.startswith(".") or name in ALWAYS_SKIPPED or any(fnmatch.fnmatch(name, p) for p in ignore)

    def walk(directory: Path, level: int) -> bool:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: (not e.is_dir(follow_symlinks=False), e.name))
        except OSError:
            return True
        for entry in entries:
            if skipped(entry.name):
                continue
            if len(lines) >= MAX_ENTRIES:
                return False
            is_dir = entry.is_dir(follow_symlinks=False)
            lines.append("  " * level + "- " + entry.name + ("/" if is_dir else ""))
            if is_dir and level + 1 < depth and not walk(Path(entry.path), level + 1):
                return False
        return True

    complete = walk(root, 0)
    return lines, not complete


class LsTool(Tool):
    name = "ls"
    action = "list"
    input_type = LsInput
    description = "List the files and directories under a path of the workspace as a tree."

    def target(self, args: LsInput) -> str | None:
        return args.path

    async def run(self, ctx: ToolContext, args: LsInput) -> ToolResult:
        depth = DEFAULT_DEPTH if args.depth is None else args.depth
        if depth < 1:
            raise ToolInputError("depth must be at least 1")
        path, _inside = resolve_path(ctx.root, args.path)
        lines, truncated = await asyncio.to_thread(tree, path, args.ignore, depth)
        body = f"{path}/\n" + "\n".join(lines)
        if truncated:
            body += f"\n(Only the first {MAX_ENTRIES} entries are shown; list a subdirectory.)"
        return ToolResult(body)
