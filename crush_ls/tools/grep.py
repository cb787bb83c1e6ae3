"""`grep`: search file contents with a regular expression (Crush's `grep`).

Files are searched newest first and the search stops at 100 matching
lines, so the newest matches are the ones shown (Crush sorts by mtime too).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import attrs

from .base import Tool, ToolContext, ToolResult
from .globs import compile_glob
from .paths import ToolInputError, is_inside, relative_display, resolve_path
from .schema import arg
from .walk import WalkTimeout, is_binary, mtime, walk_files

MAX_MATCHES = 100
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_LINE = 500
TIMEOUT_S = 20.0


@attrs.define
class GrepInput:
    pattern: str = arg("Regular expression (or text with literal_text)")
    path: str | None = arg("Directory or file to search (default: the workspace)", default=None)
    include: str | None = arg("Glob of the files to search, e.g. *.py", default=None)
    literal_text: bool = arg("Search for the pattern as plain text", default=False)


@attrs.define
class Search:
    regex: re.Pattern[str]
    include: str | None
    found: list[str] = attrs.Factory(list)
    truncated: bool = False


def candidates(root: Path, start: Path, include: str | None, deadline: float) -> list[Path]:
    if start.is_file():
        return [start]
    if not start.is_dir():
        raise ToolInputError(f"path not found: {start}")
    wanted = compile_glob(include) if include else None
    # Inside the workspace, a symlink to a file outside is not read: that would need a person's yes.
    confined = is_inside(root, start)
    files = [
        p for p, rel in walk_files(root, start, deadline)
        if (wanted is None or wanted(rel)) and (not confined or is_inside(root, Path(os.path.realpath(p))))
    ]
    return sorted(files, key=mtime, reverse=True)


def search_file(path: Path, display: str, search: Search) -> None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return
        raw = path.read_bytes()
    except OSError:
        return
    if is_binary(raw):
        return
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if search.regex.search(line):
            if len(search.found) >= MAX_MATCHES:
                search.truncated = True
                return
            text = line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..."
            search.found.append(f"{display}:{number}: {text}")


def run_search(root: Path, start: Path, search: Search) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    try:
        files = candidates(root, start, search.include, deadline)
    except WalkTimeout:
        search.truncated = True
        return
    for path in files:
        if search.truncated or time.monotonic() > deadline:
            search.truncated = True
            return
        search_file(path, relative_display(root, path), search)


def compile_pattern(pattern: str, literal: bool) -> re.Pattern[str]:
    if pattern == "":
        raise ToolInputError("pattern must not be empty")
    try:
        return re.compile(re.escape(pattern) if literal else pattern)
    except re.error as exc:
        raise ToolInputError(
            f"invalid regular expression {pattern!r}: {exc}; set literal_text to true to search the text as is"
        ) from exc


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
        search = Search(regex=compile_pattern(args.pattern, args.literal_text), include=args.include or None)
        start, _inside = resolve_path(ctx.root, args.path)
        await asyncio.to_thread(run_search, ctx.root, start, search)
        metadata = {"matches": len(search.found), "truncated": search.truncated}
        if not search.found:
            return ToolResult("No matches found", metadata=metadata)
        body = f"Found {len(search.found)} matches\n" + "\n".join(search.found)
        if search.truncated:
            body += f"\n\n(Results are truncated to {MAX_MATCHES} matches; use a narrower pattern, path or include.)"
        return ToolResult(body, metadata=metadata)
