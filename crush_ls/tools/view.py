"""`view`: read a text file, with line numbers (Crush's `view`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from stat import S_ISDIR

import attrs

from .base import Files, Tool, ToolContext, ToolResult
from .paths import ToolInputError, open_checked_file, read_fd, relative_display
from .schema import FILE_PATH, arg
from .walk import is_binary

MAX_BYTES = 200 * 1024
MAX_LINE = 2000
DEFAULT_LIMIT = 200


@attrs.define
class ViewInput:
    file_path: str = arg(FILE_PATH)
    offset: int = arg("0-based line to start at", default=0)
    limit: int = arg("Number of lines to read", default=DEFAULT_LIMIT)


def read_numbered(path: Path, offset: int, limit: int) -> tuple[str, float]:
    """The numbered lines, and the file's modification time as read (one descriptor for both)."""
    opened = open_checked_file(path)
    if opened is None:
        raise ToolInputError(f"file not found: {path}")
    fd, stat = opened
    try:
        if S_ISDIR(stat.st_mode):
            raise ToolInputError(f"{path} is a directory; use ls")
        if stat.st_size > MAX_BYTES:
            raise ToolInputError(f"file is too large ({stat.st_size} bytes, max {MAX_BYTES}); view a range of it")
        raw = read_fd(fd)
    finally:
        os.close(fd)
    if is_binary(raw):
        raise ToolInputError(f"{path} is a binary file")
    return numbered(raw.decode("utf-8", errors="replace"), offset, limit), stat.st_mtime


async def read_through(files: Files, session_id: str, path: Path, offset: int, limit: int) -> tuple[str, float | None]:
    """`read_numbered` of the editor's text (its unsaved buffer, or the file), and its freshness stamp."""
    if path.is_dir():
        raise ToolInputError(f"{path} is a directory; use ls")
    try:
        text = await files.read_text(session_id, path)
    except ToolInputError:
        raise
    except Exception as exc:
        raise ToolInputError(f"file not found: {path}" if not path.exists() else f"cannot read {path}: {exc}") from exc
    return numbered(text, offset, limit), files.stamp(path, text)


def numbered(text: str, offset: int, limit: int) -> str:
    lines = text.splitlines()
    shown = lines[offset : offset + limit]
    out = []
    for number, line in enumerate(shown, start=offset + 1):
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + "..."
        out.append(f"{number:6}|{line}")
    body = "\n".join(out)
    if offset + limit < len(lines):
        body += f"\n\n(File has more lines. Use 'offset' to read beyond line {offset + limit}.)"
    return f"<file>\n{body}\n</file>"


class ViewTool(Tool):
    name = "view"
    action = "read"
    input_type = ViewInput
    description = (
        "Read a file of the workspace with line numbers. `offset` is the 0-based first line, "
        f"`limit` the number of lines (default {DEFAULT_LIMIT})."
    )

    def target(self, args: ViewInput) -> str | None:
        return args.file_path

    async def run(self, ctx: ToolContext, args: ViewInput) -> ToolResult:
        if args.offset < 0 or args.limit <= 0:
            raise ToolInputError("offset must be >= 0 and limit > 0")
        path = self.checked_path(ctx, args)
        if ctx.files is not None and ctx.files.covers(path):
            text, mtime = await read_through(ctx.files, ctx.session_id, path, args.offset, args.limit)
        else:
            text, mtime = await asyncio.to_thread(read_numbered, path, args.offset, args.limit)
        ctx.store.record_read(ctx.session_id, str(path), mtime)
        return ToolResult(text, metadata={"path": relative_display(ctx.root, path)})
