"""`diagnostics`: the errors and warnings the editor's language servers report (Crush's `diagnostics`).

crush-ls runs no language server itself: it asks the editor, which has them
already (server-to-client `agent/diagnostics`, PROTOCOL section 4). The tool
exists only for a client that declared it answers; `DiagnosticsSource` is
that client, as the tools see it. `render` is also what an edit's result and
a `diagnostics` context item show.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs

from .base import Tool, ToolContext, ToolResult
from .paths import is_inside, relative_display
from .schema import arg

MAX_SHOWN = 200  # diagnostics in one result; the rest are counted
SEVERITIES = {1: "error", 2: "warning", 3: "info", 4: "hint"}


class DiagnosticsUnavailable(Exception):
    """The editor did not give the diagnostics (no answer in time, an error, a malformed answer)."""


class DiagnosticsSource(Protocol):
    async def diagnostics(self, paths: list[Path] | None) -> dict[Path, list[dict[str, Any]]]:
        """LSP Diagnostics by file (None: every file the editor knows of); raises DiagnosticsUnavailable."""
        ...


def render(display: Callable[[Path], str], found: dict[Path, list[dict[str, Any]]], limit: int = MAX_SHOWN) -> str:
    """One line per diagnostic, errors first: `error src/a.py:3:5 [pyright][E1] message`."""
    rows = [(d.get("severity") or 1, display(path), d) for path, ds in found.items() for d in ds]
    rows.sort(key=lambda row: (row[0], row[1], row[2]["range"]["start"]["line"], row[2]["range"]["start"]["character"]))
    lines = [_line(severity, display, d) for severity, display, d in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"({len(rows) - limit} more not shown)")
    return "\n".join(lines)


def _line(severity: int, display: str, d: dict[str, Any]) -> str:
    start = d["range"]["start"]
    tags = "".join(f"[{d[k]}]" for k in ("source", "code") if d.get(k) not in (None, ""))
    message = " ".join(str(d.get("message", "")).split())  # one line each
    return f"{SEVERITIES.get(severity, 'error')} {display}:{start['line'] + 1}:{start['character'] + 1}" \
           f"{' ' + tags if tags else ''} {message}"


@attrs.define
class DiagnosticsInput:
    file_path: str | None = arg("A file (default: every file of the workspace the editor has checked)",
                                default=None)


class DiagnosticsTool(Tool):
    name = "diagnostics"
    action = "read"
    input_type = DiagnosticsInput
    description = (
        "Get the errors and warnings the editor's language servers report, for one file or (no file_path) "
        "the whole workspace. Use it after changing code to see whether it still compiles and type-checks."
    )

    def __init__(self, source: DiagnosticsSource) -> None:
        self.source = source

    def target(self, args: DiagnosticsInput) -> str | None:
        return args.file_path

    def describe(self, ctx: ToolContext, args: DiagnosticsInput) -> str:
        return f"Diagnostics of {args.file_path}" if args.file_path else "Diagnostics of the workspace"

    async def run(self, ctx: ToolContext, args: DiagnosticsInput) -> ToolResult:
        path = self.checked_path(ctx, args) if args.file_path else None
        try:
            found = await self.source.diagnostics([path] if path is not None else None)
        except DiagnosticsUnavailable as exc:
            return ToolResult(f"The editor did not give the diagnostics: {exc}", is_error=True)
        if path is None:  # the workspace's files only: the editor may know of others
            found = {p: ds for p, ds in found.items() if is_inside(ctx.root, p)}
        else:
            found = {p: ds for p, ds in found.items() if p == path}
        where = relative_display(ctx.root, path) if path is not None else "the workspace"
        count = sum(len(ds) for ds in found.values())
        if not count:
            return ToolResult(f"No diagnostics in {where}.")
        shown = render(lambda p: relative_display(ctx.root, p), found)
        noun = "diagnostic" if count == 1 else "diagnostics"
        return ToolResult(f"{count} {noun} in {where}:\n{shown}", metadata={"count": count})
