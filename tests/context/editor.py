"""An `Editor` (tests/documents) that also answers `agent/diagnostics`, as a language server's would."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from tests.documents.editor import Editor, capabilities, editor_factory


class DiagnosingEditor(Editor):
    """`problems` are the diagnostics by URI it answers with; `answer` may replace the answer
    (a callable raising makes an error response). `after_change(uri, text)`, when set, gives the
    problems of a document 0.5 s after each change of it, as a language server checking it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems: dict[str, list[dict[str, Any]]] = {}
        self.diagnostics_requests: list[dict[str, Any]] = []
        self.answer: Any = None
        self.after_change: Any = None

    def answer_diagnostics(self, params: dict[str, Any]) -> Any:
        self.diagnostics_requests.append(params)
        if self.answer is not None:
            return self.answer(params) if callable(self.answer) else self.answer
        uris = params.get("uris") or list(self.problems)
        return {"items": [{"uri": uri, "diagnostics": self.problems.get(uri, [])} for uri in uris]}

    def _change(self, buffer: Any, changes: list[dict[str, Any]]) -> None:
        super()._change(buffer, changes)
        if self.after_change is not None:
            found = self.after_change(buffer.uri, buffer.text)
            asyncio.get_running_loop().call_later(0.5, self.problems.__setitem__, buffer.uri, found)


def diagnosing_factory() -> DiagnosingEditor:
    """tests/documents' editor, also answering `agent/diagnostics`."""
    editor = editor_factory(DiagnosingEditor())
    assert isinstance(editor, DiagnosingEditor)

    @editor.feature("agent/diagnostics")
    def on_diagnostics(params: dict[str, Any]) -> Any:
        return editor.answer_diagnostics(params)

    return editor


def diagnosing_capabilities(declare: bool = True) -> types.ClientCapabilities:
    caps = capabilities("vscode", save=True)
    if declare:
        caps.experimental = {"crush": {**(caps.experimental or {}).get("crush", {}), "diagnostics": True}}
    return caps
