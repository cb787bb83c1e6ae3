"""`glob`: find files by name pattern, newest first (Crush's `glob`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import attrs

from .base import Tool, ToolContext, ToolResult
from .globs import compile_glob
from .paths import ToolInputError, relative_display, resolve_path
from .schema import arg
from .walk import WalkTimeout, mtime, walk_files

MAX_RESULTS = 100
TIMEOUT_S = 30.0


@attrs.define
class GlobInput:
    pattern: str = arg("The glob pattern, e.g. **/*.py")
    path: str | None = arg("Directory to search (default: the workspace)", default=None)


def find(root: Path, start: Path, pattern: str) -> tuple[list[Path], bool]:
    """Matching files, newest first, at most MAX_RESULTS; and whether there were more (or time ran out)."""
    if not start.is_dir():
        raise ToolInputError(f"directory not found: {start}")
    matches = compile_glob(pattern)
    found: list[Path] = []
    timed_out = False
    try:
        for path, rel in walk_files(root, start, deadline=time.monotonic() + TIMEOUT_S):
            if matches(rel):
                found.append(path)
    except WalkTimeout:
        timed_out = True
    found.sort(key=mtime, reverse=True)
    return found[:MAX_RESULTS], timed_out or len(found) > MAX_RESULTS


def check_pattern(pattern: str) -> None:
    if not pattern.strip():
        raise ToolInputError("pattern must not be empty")
    if pattern.startswith("/") or ".." in pattern.split("/"):
        raise ToolInputError("pattern must be relative and without '..'; give the directory as path")


class GlobTool(Tool):
    name = "glob"
    action = "list"
    input_type = GlobInput
    description = (
        "Find files whose path matches a glob pattern (`*`, `?`, `[abc]`, `{a,b}`, `**` for any "
        "directories), newest first, at most 100. A pattern without '/' matches file names at any "
        "depth (`*.py`); `src/**/*.ts` matches paths. Hidden and ignored files (.gitignore, "
        ".crushignore) are skipped."
    )

    def target(self, args: GlobInput) -> str | None:
        return args.path

    def describe(self, ctx: ToolContext, args: GlobInput) -> str:
        return f"Find files matching {args.pattern} in {args.path or 'the workspace'}"

    async def run(self, ctx: ToolContext, args: GlobInput) -> ToolResult:
        check_pattern(args.pattern)
        start, _inside = resolve_path(ctx.root, args.path)
        found, truncated = await asyncio.to_thread(find, ctx.root, start, args.pattern)
        if not found:
            return ToolResult("No files found", metadata={"count": 0, "truncated": truncated})
        lines = [relative_display(ctx.root, p) for p in found]
        if truncated:
            lines.append(f"\n(Results are truncated to the newest {MAX_RESULTS}; use a narrower pattern or path.)")
        return ToolResult("\n".join(lines), metadata={"count": len(found), "truncated": truncated})
