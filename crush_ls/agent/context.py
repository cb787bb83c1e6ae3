"""Editor context (`agent/sendMessage.context`, PROTOCOL section 2) read into the parts stored with a prompt.

The backend checked the items when the prompt arrived and named each item's
file (`file`: the resolved path, None for an item whose text came with it,
`path`: as the model reads it). When the run starts, an item without text is
read: a file from the editor's buffer when it has the document open (the
file tools' `Files`), else from the disk; a selection as the lines of its
range; diagnostics from the client. Every text is bounded.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..protocol.params import range_lines
from ..tools.base import Files
from ..tools.diagnostics import DiagnosticsSource, DiagnosticsUnavailable, render
from ..tools.paths import is_inside
from ..tools.walk import is_binary

MAX_ITEMS = 32
MAX_ITEM_CHARS = 32_000
MAX_TOTAL_CHARS = 128_000
MAX_SELECTION_FILE_BYTES = 10 * 1024 * 1024  # as the edit tools' limit


def context_part(item: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    """The stored part of an item (`text`: as read; None: as the client sent it, or empty)."""
    part: dict[str, Any] = {"type": "context", "uri": item["uri"], "kind": item["kind"]}
    if item.get("path"):
        part["path"] = item["path"]
    if item.get("range") is not None:
        part["range"] = item["range"]
    part["text"] = text if text is not None else item.get("text") or ""
    return part


async def read_context(items: list[dict[str, Any]], root: Path, session_id: str, files: Files | None,
                       diagnostics: DiagnosticsSource | None) -> list[dict[str, Any]]:
    """The items as stored parts, each text read (when not given) and cut to the limits."""
    # The files not open in the editor, read from the disk in one worker-thread call.
    wanted = {Path(i["file"]): i["kind"] for i in items if i.get("text") is None and i["kind"] != "diagnostics"
              and not (files is not None and files.covers(Path(i["file"])))}
    on_disk = await asyncio.to_thread(_read_all, root, wanted) if wanted else {}
    parts: list[dict[str, Any]] = []
    budget = MAX_TOTAL_CHARS
    for item in items:
        text, more = item.get("text"), ""
        if text is None:
            text, more = await _read(item, session_id, files, diagnostics, on_disk)
        part = context_part(item, text)
        limit = min(MAX_ITEM_CHARS, budget)
        if len(part["text"]) > limit:
            cut = len(part["text"]) - limit
            part["text"] = part["text"][:limit] + f"\n[cut: {more}{cut} more characters]"
            part["truncated"] = True
        budget = max(0, budget - len(part["text"]))
        parts.append(part)
    return parts


async def _read(item: dict[str, Any], session_id: str, files: Files | None, diagnostics: DiagnosticsSource | None,
                on_disk: dict[Path, tuple[str, bool] | Exception]) -> tuple[str, str]:
    """An item's text, and "at least " when the file was read only as far as the limit needs."""
    path = Path(item["file"])
    if item["kind"] == "diagnostics":
        if diagnostics is None:
            return "(the editor gives no diagnostics)", ""
        try:
            found = await diagnostics.diagnostics([path])
        except DiagnosticsUnavailable as exc:
            return f"(the editor did not give the diagnostics: {exc})", ""
        shown = {path: found.get(path, [])}
        return (render(lambda _p: str(item.get("path") or path), shown) if shown[path] else "No diagnostics."), ""
    try:
        if path in on_disk:
            read = on_disk[path]
            if isinstance(read, Exception):
                raise read
            text, partial = read
        else:  # open in the editor: its buffer's text
            assert files is not None
            text, partial = await files.read_text(session_id, path), False
    except Exception as exc:  # noqa: BLE001 - the prompt still runs; the model reads why
        return f"(cannot read {item.get('path') or path}: {exc})", ""
    text = text.replace("\r\n", "\n")
    if item["kind"] == "selection":
        return selected_lines(text, item["range"]), ""
    return text, "at least " if partial else ""


def _read_all(root: Path, wanted: dict[Path, str]) -> dict[Path, tuple[str, bool] | Exception]:
    read: dict[Path, tuple[str, bool] | Exception] = {}
    for path, kind in wanted.items():
        try:  # a file needs no more than its limit; a selection's lines may be anywhere in it
            read[path] = _read_disk(root, path, MAX_ITEM_CHARS * 4 if kind == "file" else MAX_SELECTION_FILE_BYTES)
        except Exception as exc:  # noqa: BLE001 - reported in the item's text
            read[path] = exc
    return read


def _read_disk(root: Path, path: Path, limit: int) -> tuple[str, bool]:
    """The text of the file, at most `limit` bytes of it (and whether there was more)."""
    real = Path(os.path.realpath(path))
    if not is_inside(root, real):  # a symlink swapped in since the prompt was checked
        raise ValueError("it now leads outside the workspace")
    with real.open("rb") as f:
        raw = f.read(limit + 1)
    if is_binary(raw[:8192]):
        raise ValueError("it is a binary file")
    if len(raw) > limit:  # cut, maybe mid-character: the item's limit cuts it shorter anyway
        return raw[:limit].decode("utf-8", errors="ignore"), True
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None


def selected_lines(text: str, r: dict[str, Any]) -> str:
    """The whole lines of a range (an end at character 0 leaves its line out)."""
    first, last = range_lines(r)
    return "".join(text.splitlines(keepends=True)[first:last + 1])
