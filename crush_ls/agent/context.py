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

from ..tools.base import Files
from ..tools.diagnostics import DiagnosticsSource, DiagnosticsUnavailable, render
from ..tools.paths import is_inside
from ..tools.walk import is_binary

MAX_ITEMS = 32
MAX_ITEM_CHARS = 32_000
MAX_TOTAL_CHARS = 128_000


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
    parts: list[dict[str, Any]] = []
    budget = MAX_TOTAL_CHARS
    for item in items:
        text = item.get("text")
        if text is None:
            text = await _read(item, root, session_id, files, diagnostics)
        part = context_part(item, text)
        limit = min(MAX_ITEM_CHARS, budget)
        if len(part["text"]) > limit:
            cut = len(part["text"]) - limit
            part["text"] = part["text"][:limit] + f"\n[cut: {cut} more characters]"
            part["truncated"] = True
        budget = max(0, budget - min(len(part["text"]), limit))
        parts.append(part)
    return parts


async def _read(item: dict[str, Any], root: Path, session_id: str, files: Files | None,
                diagnostics: DiagnosticsSource | None) -> str:
    path = Path(item["file"])
    if item["kind"] == "diagnostics":
        if diagnostics is None:
            return "(the editor gives no diagnostics)"
        try:
            found = await diagnostics.diagnostics([path])
        except DiagnosticsUnavailable as exc:
            return f"(the editor did not give the diagnostics: {exc})"
        shown = {path: found.get(path, [])}
        return render(lambda _p: str(item.get("path") or path), shown) if shown[path] else "No diagnostics."
    try:
        if files is not None and files.covers(path):
            text = await files.read_text(session_id, path)
        else:
            text = await asyncio.to_thread(_read_disk, root, path)
    except Exception as exc:  # noqa: BLE001 - the prompt still runs; the model reads why
        return f"(cannot read {item.get('path') or path}: {exc})"
    text = text.replace("\r\n", "\n")
    return selected_lines(text, item["range"]) if item["kind"] == "selection" else text


def _read_disk(root: Path, path: Path) -> str:
    real = Path(os.path.realpath(path))
    if not is_inside(root, real):  # a symlink swapped in since the prompt was checked
        raise ValueError("it now leads outside the workspace")
    with real.open("rb") as f:
        raw = f.read(MAX_TOTAL_CHARS * 4 + 1)  # enough for the limit in any UTF-8
    if is_binary(raw[:8192]):
        raise ValueError("it is a binary file")
    if len(raw) > MAX_TOTAL_CHARS * 4:  # cut, maybe mid-character: the limit cuts it shorter anyway
        return raw.decode("utf-8", errors="ignore")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None


def selected_lines(text: str, r: dict[str, Any]) -> str:
    """The whole lines of a range (an end at character 0 leaves its line out)."""
    first, last = r["start"]["line"], r["end"]["line"]
    if r["end"]["character"] == 0 and last > first:
        last -= 1
    return "".join(text.splitlines(keepends=True)[first:last + 1])
