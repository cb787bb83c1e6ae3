"""`glob`: find files by name pattern, newest first (Crush's `glob`); the search runs in a worker (worker.py)."""

from __future__ import annotations

import attrs

from .base import Tool, ToolContext, ToolResult
from .paths import ToolInputError
from .schema import arg
from .search import GLOB_MAX_RESULTS, GLOB_TIMEOUT_S
from .worker import engine, run_search

MAX_RESULTS = GLOB_MAX_RESULTS


@attrs.define
class GlobInput:
    pattern: str = arg("The glob pattern, e.g. **/*.py")
    path: str | None = arg("Directory to search (default: the workspace)", default=None)


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
        start = self.checked_path(ctx, args)
        job: dict[str, object] = {"op": "glob", "root": str(ctx.root), "start": str(start), "pattern": args.pattern,
                                  "engine": engine()}
        if ctx.files is not None:  # a document open in the editor exists, saved or not
            job["unsaved"] = [str(path) for path in ctx.files.open_texts(start) if not path.exists()]
        found, truncated = await run_search(job, GLOB_TIMEOUT_S)
        if not found:
            return ToolResult("No files found", metadata={"count": 0, "truncated": truncated})
        lines = list(found)
        if truncated:
            lines.append(f"\n(Results are truncated to the newest {MAX_RESULTS}; use a narrower pattern or path.)")
        return ToolResult("\n".join(lines), metadata={"count": len(found), "truncated": truncated})
