"""`view`: read a text file, with line numbers (Crush's `view`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import attrs

from .base import Files, Tool, ToolContext, ToolResult, mtime_or_none
from .paths import ToolInputError, relative_display, resolve_path
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


def read_numbered(path: Path, offset: int, limit: int) -> str:
    if not path.exists():
        raise ToolInputError(f"file not found: {path}")
    if path.is_dir():
        raise ToolInputError(f"{path} is a directory; use ls")
    if path.stat().st_size > MAX_BYTES:
        raise ToolInputError(f"file is too large ({path.stat().st_size} bytes, max {MAX_BYTES}); view a range of it")
    raw = path.read_bytes()
    if is_binary(raw):
        raise ToolInputError(f"{path} is a binary file")
    return numbered(raw.decode("utf-8", errors="replace"), offset, limit)


async def read_through(files: Files, session_id: str, path: Path, offset: int, limit: int) -> str:
    """`read_numbered` of the editor's text (its unsaved buffer, or the file)."""
    if path.is_dir():
        raise ToolInputError(f"{path} is a directory; use ls")
    try:
        text = await files.read_text(session_id, path)
    except Exception as exc:  # noqa: BLE001 - the editor's error, shown to the model
        raise ToolInputError(f"file not found: {path}" if not path.exists() else f"cannot read {path}: {exc}") from exc
    return numbered(text, offset, limit)


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
        path, _inside = resolve_path(ctx.root, args.file_path)
        if ctx.files is not None:
            text = await read_through(ctx.files, ctx.session_id, path, args.offset, args.limit)
        else:
            text = await asyncio.to_thread(read_numbered, path, args.offset, args.limit)
        await ctx.store.record_read(ctx.session_id, str(path), mtime_or_none(path))
        return ToolResult(text, metadata={"path": relative_display(ctx.root, path)})
