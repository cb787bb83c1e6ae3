"""The editor's diagnostics, asked with server-to-client `agent/diagnostics` (PROTOCOL section 4).

`ClientDiagnostics` is the `tools.diagnostics.DiagnosticsSource` of a client
that declared `experimental.crush.diagnostics`: the `diagnostics` tool, a
`diagnostics` context item and the note after an edit all ask through it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from .. import protocol as p
from ..protocol.convert import structure_params
from ..protocol.params import DiagnosticsResult, range_to_dict
from ..tools.diagnostics import DiagnosticsUnavailable, render
from .client import Client, ClientDeclined
from .workspace import uri_to_path

log = logging.getLogger(__name__)

ANSWER_TIMEOUT = 5.0
# After an edit: the editor's language servers take a moment to check the change. The
# first answer is (nearly always) what they said before it; the note waits for a change
# from it, asking every SETTLE_POLL seconds, at most SETTLE_LIMIT seconds in all.
SETTLE_POLL = 0.3
SETTLE_LIMIT = 2.0
AFTER_EDIT_SHOWN = 30


class ClientDiagnostics:
    def __init__(self, client: Client, where: Callable[[Path], tuple[str, str]]) -> None:
        self._client = client
        self._where = where  # a path as the model reads it (relative to its workspace), and as the client names it

    async def diagnostics(self, paths: list[Path] | None) -> dict[Path, list[dict[str, Any]]]:
        params = {} if paths is None else {"uris": [self._where(path)[1] for path in paths]}
        try:
            raw = await self._client.request(p.DIAGNOSTICS, params, ANSWER_TIMEOUT)
        except TimeoutError as exc:
            raise DiagnosticsUnavailable(f"no answer to agent/diagnostics within {ANSWER_TIMEOUT:.0f} s") from exc
        except ClientDeclined as exc:
            raise DiagnosticsUnavailable(str(exc)) from exc
        try:
            result = structure_params(raw, DiagnosticsResult)
        except ValueError as exc:
            raise DiagnosticsUnavailable(f"the answer to agent/diagnostics is malformed: "
                                         f"{str(exc).replace('params', 'result')}") from exc
        found: dict[Path, list[dict[str, Any]]] = {}
        for item in result.items:
            try:  # resolved, as every path of the tools (the workspace URI may be a symlink's)
                path = Path(os.path.realpath(uri_to_path(item.uri)))
            except ValueError:
                continue  # not a file (an untitled buffer, a git: view)
            found.setdefault(path, []).extend(
                {**attrs.asdict(d, filter=lambda a, v: v is not None), "range": range_to_dict(d.range)}
                for d in item.diagnostics)
        return found

    async def after_edit(self, path: Path) -> str | None:
        """The file's diagnostics once the editor has checked the edit, as a note for the edit's result."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_LIMIT
        try:
            first = await self.diagnostics([path])
            latest = first
            while latest == first and loop.time() + SETTLE_POLL <= deadline:
                await asyncio.sleep(SETTLE_POLL)
                latest = await self.diagnostics([path])
        except DiagnosticsUnavailable as exc:
            log.info("diagnostics after the edit of %s: %s", path, exc)
            return None
        shown = {path: latest.get(path, [])}
        if not shown[path]:
            return "No diagnostics in the file after the edit."
        lines = render(lambda p: self._where(p)[0], shown, AFTER_EDIT_SHOWN)
        return f"Diagnostics of the file after the edit:\n{lines}"
