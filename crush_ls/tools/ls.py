"""`ls`: a tree of a directory of the workspace (Crush's `ls`).

It sees what `glob` and `grep` see (walk.py): hidden and ignored entries
(.gitignore, .crushignore) are left out, as Crush's `ls` leaves them out.
"""

from __future__ import annotations

import asyncio
import fnmatch
from pathlib import Path

import attrs

from .base import Tool, ToolContext, ToolResult
from .paths import ToolInputError, resolve_path
from .schema import arg
from .walk import Walker

MAX_ENTRIES = 1000
DEFAULT_DEPTH = 3


@attrs.define
class LsInput:
    path: str | None = arg("Directory to list (default: the workspace)", default=None)
    ignore: list[str] = arg("Glob patterns to skip", factory=list)
    depth: int | None = arg(f"How deep to go (default {DEFAULT_DEPTH})", default=None)


def tree(root: Path, start: Path, ignore: list[str], depth: int) -> tuple[list[str], bool]:
    """The tree under `start` (directories first), and whether it was cut at MAX_ENTRIES."""
    if not start.exists():
        raise ToolInputError(f"directory not found: {start}")
    if not start.is_dir():
        raise ToolInputError(f"{start} is not a directory; use view")
    walker = Walker(root, start)
    lines: list[str] = []

    def walk(directory: Path, level: int) -> bool:
        entries = [e for e in walker.entries(directory) if not any(fnmatch.fnmatch(e.name, p) for p in ignore)]
        for entry in sorted(entries, key=lambda e: not e.is_dir(follow_symlinks=False)):
            if len(lines) >= MAX_ENTRIES:
                return False
            is_dir = entry.is_dir(follow_symlinks=False)
            lines.append("  " * level + "- " + entry.name + ("/" if is_dir else ""))
            if is_dir and level + 1 < depth and not walk(Path(entry.path), level + 1):
                return False
        return True

    complete = walk(start, 0)
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
        lines, truncated = await asyncio.to_thread(tree, ctx.root, path, args.ignore, depth)
        body = f"{path}/\n" + "\n".join(lines)
        if truncated:
            body += f"\n(Only the first {MAX_ENTRIES} entries are shown; list a subdirectory.)"
        return ToolResult(body)
