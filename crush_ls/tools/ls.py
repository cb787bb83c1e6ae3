"""`ls`: a tree of a directory of the workspace (Crush's `ls`).

It sees what `glob` and `grep` see (walk.py): hidden and ignored entries
(.gitignore, .crushignore) are left out, as Crush's `ls` leaves them out.
The walk runs in a search worker (worker.py), since ignore files can hold
patterns of any cost.
"""

from __future__ import annotations

import attrs

from .base import Tool, ToolContext, ToolResult
from .paths import ToolInputError
from .schema import arg
from .search import LS_MAX_ENTRIES as MAX_ENTRIES
from .worker import run_search

DEFAULT_DEPTH = 3
TIMEOUT_S = 30.0


@attrs.define
class LsInput:
    path: str | None = arg("Directory to list (default: the workspace)", default=None)
    ignore: list[str] = arg("Glob patterns to skip", factory=list)
    depth: int | None = arg(f"How deep to go (default {DEFAULT_DEPTH})", default=None)


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
        path = self.checked_path(ctx, args)
        job = {"op": "ls", "root": str(ctx.root), "start": str(path), "ignore": args.ignore, "depth": depth}
        lines, truncated = await run_search(job, TIMEOUT_S)
        body = f"{path}/\n" + "\n".join(lines)
        if truncated:
            body += f"\n(Only the first {MAX_ENTRIES} entries are shown; list a subdirectory.)"
        return ToolResult(body)
