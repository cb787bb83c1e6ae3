"""`grep`: search file contents with a regular expression (Crush's `grep`).

Files are searched newest first and the search stops at 100 matching
lines, so the newest matches are the ones shown (Crush sorts by mtime too).
The search runs in a worker process (worker.py, search.py), with ripgrep
when it is installed: a regex that backtracks forever costs the worker its
deadline, never the server its event loop.
"""

from __future__ import annotations

import re

import attrs

from .base import Tool, ToolContext, ToolResult
from .paths import ToolInputError
from .schema import arg
from .search import GREP_MAX_MATCHES, GREP_TIMEOUT_S
from .worker import engine, run_search

MAX_MATCHES = GREP_MAX_MATCHES


@attrs.define
class GrepInput:
    pattern: str = arg("Regular expression (or text with literal_text)")
    path: str | None = arg("Directory or file to search (default: the workspace)", default=None)
    include: str | None = arg("Glob of the files to search, e.g. *.py", default=None)
    literal_text: bool = arg("Search for the pattern as plain text", default=False)


def compile_pattern(pattern: str, literal: bool) -> str:
    """The regex to search for (checked here, so a bad one is the model's error at once)."""
    if pattern == "":
        raise ToolInputError("pattern must not be empty")
    regex = re.escape(pattern) if literal else pattern
    try:
        re.compile(regex)
    except re.error as exc:
        raise ToolInputError(
            f"invalid regular expression {pattern!r}: {exc}; set literal_text to true to search the text as is"
        ) from exc
    return regex


class GrepTool(Tool):
    name = "grep"
    action = "read"
    input_type = GrepInput
    description = (
        "Search the contents of files for a regular expression (Python syntax), or for plain text "
        "with `literal_text: true`. `include` filters files by glob (`*.py`, `*.{ts,tsx}`). Shows up "
        "to 100 matching lines as `path:line: text`, newest files first. Hidden and ignored files "
        "(.gitignore, .crushignore) are skipped."
    )

    def target(self, args: GrepInput) -> str | None:
        return args.path

    def describe(self, ctx: ToolContext, args: GrepInput) -> str:
        return f"Search for {args.pattern!r} in {args.path or 'the workspace'}"

    async def run(self, ctx: ToolContext, args: GrepInput) -> ToolResult:
        regex = compile_pattern(args.pattern, args.literal_text)
        start = self.checked_path(ctx, args)
        job: dict[str, object] = {"op": "grep", "root": str(ctx.root), "start": str(start), "pattern": regex,
               "include": args.include or None, "engine": engine()}
        if ctx.files is not None and (texts := ctx.files.open_texts(start)):
            job["texts"] = {str(path): text for path, text in texts.items()}  # the editor's unsaved text
        found, truncated = await run_search(job, GREP_TIMEOUT_S)
        metadata = {"matches": len(found), "truncated": truncated}
        if not found:
            return ToolResult("No matches found", metadata=metadata)
        body = f"Found {len(found)} matches\n" + "\n".join(found)
        if truncated:
            body += f"\n\n(Results are truncated to {MAX_MATCHES} matches; use a narrower pattern, path or include.)"
        return ToolResult(body, metadata=metadata)
