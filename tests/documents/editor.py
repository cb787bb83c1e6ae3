"""An editor for the protocol tests of "Documents and edits": buffers synced to the server,
`workspace/applyEdit` applied to them, and the ways real editors answer it.

`Editor` keeps a buffer per open document and sends `didOpen`/`didChange`
(incremental) as a person's typing would. Its `workspace/applyEdit` handler
behaves like one of:

- "vscode": refuses an edit of an older version (`applied: false`), else applies it;
- "neovim": skips an edit of an older version but answers `applied: true`;
- "refuse": always `applied: false`.

`before_apply` runs before an edit is looked at: a test types into the
buffer there, as a person typing while the agent edits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from lsprotocol import types
from pytest_lsp.client import client_capabilities

from crush_ls.backend.documents import apply_change, offset_of, position_of
from tests.conftest import AgentClient, client_factory
from tests.e2e.runs import steps as scripted_steps


@attrs.define
class Buffer:
    uri: str
    version: int
    text: str


class Editor(AgentClient):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = "vscode"
        self.encoding = "utf-16"
        self.buffers: dict[str, Buffer] = {}
        self.edits: list[dict[str, Any]] = []  # workspace/applyEdit params as received
        self.saves: list[dict[str, Any]] = []  # agent/saveDocument params, with the disk's text at that moment
        self.before_apply: Callable[[Editor, int], None] | None = None  # (editor, number of the edit)

    # -------------------------------------------------------------- what a person does
    def open(self, path: Path, text: str | None = None) -> Buffer:
        """Open `path` (its disk text, or `text` as unsaved changes)."""
        uri = path.as_uri()
        buffer = Buffer(uri, 1, path.read_text() if text is None else text)
        self.buffers[uri] = buffer
        self.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=buffer.text)))
        return buffer

    def type(self, path: Path, old: str, new: str) -> None:
        """Replace the first `old` of the buffer by `new`, as typing would (one incremental change)."""
        buffer = self.buffers[path.as_uri()]
        start = buffer.text.index(old)
        self._change(buffer, [{"range": {"start": self._position(buffer.text, start),
                                         "end": self._position(buffer.text, start + len(old))}, "text": new}])

    def close(self, path: Path) -> None:
        del self.buffers[path.as_uri()]
        self.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri())))

    def buffer_text(self, path: Path) -> str:
        return self.buffers[path.as_uri()].text

    # -------------------------------------------------------------- the editor's side
    def apply_edit(self, params: types.ApplyWorkspaceEditParams) -> dict[str, Any]:
        raw = self.protocol._converter.unstructure(params)
        self.edits.append(raw)
        if self.before_apply is not None:
            self.before_apply(self, len(self.edits))
        if self.mode == "refuse":
            return {"applied": False, "failureReason": "refused by the test"}
        edit = raw["edit"]
        changes = [(c["textDocument"]["uri"], c["textDocument"].get("version"), c["edits"])
                   for c in edit.get("documentChanges", [])]
        changes += [(uri, None, edits) for uri, edits in edit.get("changes", {}).items()]
        for uri, version, edits in changes:
            buffer = self.buffers[uri]
            if version is not None and version != buffer.version:
                if self.mode == "neovim":  # "Buffer ... newer than edits": skipped, and still applied: true
                    continue
                return {"applied": False}
            # Applied all at once on the old text: in reverse order, each range stays valid.
            ordered = sorted(edits, key=lambda e: offset_of(buffer.text, e["range"]["start"], self.encoding),
                             reverse=True)
            self._change(buffer, [{"range": e["range"], "text": e["newText"]} for e in ordered])
        return {"applied": True}

    def save(self, params: dict[str, Any]) -> dict[str, Any]:
        path = Path(params["uri"].removeprefix("file://"))
        self.saves.append({**params, "disk": path.read_text() if path.exists() else None})
        path.write_text(self.buffers[params["uri"]].text)
        return {"saved": True}

    def _change(self, buffer: Buffer, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            buffer.text = apply_change(buffer.text, change, self.encoding)
        buffer.version += 1
        self.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=buffer.uri, version=buffer.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(**c["range"]["start"]), end=types.Position(**c["range"]["end"])),
                text=c["text"]) for c in changes]))

    def _position(self, text: str, offset: int) -> dict[str, int]:
        return position_of(text, offset, self.encoding)


def editor_factory(editor: Editor | None = None) -> Editor:
    editor = client_factory(editor or Editor())
    assert isinstance(editor, Editor)

    @editor.feature(types.WORKSPACE_APPLY_EDIT)
    async def on_apply_edit(params: types.ApplyWorkspaceEditParams) -> dict[str, Any]:
        await asyncio.sleep(0)  # answered from a task, as editors do, after their didChange
        return editor.apply_edit(params)

    @editor.feature("agent/saveDocument")
    def on_save(params: dict[str, Any]) -> dict[str, Any]:
        return editor.save(params)

    return editor


def capabilities(like: str = "vscode", *, save: bool = False, apply_edit: bool = True) -> types.ClientCapabilities:
    """The capabilities of a real editor (pytest-lsp's recorded ones), with crush-ls' experimental flags."""
    caps = client_capabilities("visual-studio-code" if like == "vscode" else "neovim@v0.11.0")
    if not apply_edit:
        assert caps.workspace is not None
        caps.workspace.apply_edit = False
    caps.experimental = {"crush": {"saveDocument": True}} if save else None
    return caps


def editor_options(like: str = "vscode", *, save: bool = False, apply_edit: bool = True) -> dict[str, Any]:
    """The keywords of the `start` fixture that make an `Editor` like `like`."""
    return {"capabilities": capabilities(like, save=save, apply_edit=apply_edit), "factory": editor_factory}


def ready(editor: Any, like: str = "vscode") -> Editor:
    """The editor `start` returned, set to behave like `like` in the encoding the server chose."""
    assert isinstance(editor, Editor)
    editor.mode = "neovim" if like == "neovim" else "vscode"
    encoding = editor.init_result.capabilities.position_encoding or "utf-16"
    editor.encoding = str(getattr(encoding, "value", encoding))
    return editor


def steps(*calls: dict[str, Any], text: str = "done") -> dict[str, Any]:
    """initializationOptions with a scripted model making one tool call per step, then saying `text`,
    and every tool call allowed."""
    return {"model": scripted_steps(*calls, text=text), "permissions": {"mode": "allow"}}


async def run(editor: Editor, prompt: str = "go") -> list[dict[str, Any]]:
    """One run of a new session; its tool results, after its run_complete."""
    session = await editor.new_session()
    run_id = (await editor.send(session, prompt))["runId"]
    await editor.completed(run_id)
    return [n for n in editor.of_run(run_id) if n["type"] == "tool_result"]


def view(path: str) -> dict[str, Any]:
    return {"name": "view", "input": {"file_path": path}}


def edit(path: str, old: str, new: str) -> dict[str, Any]:
    return {"name": "edit", "input": {"file_path": path, "old_string": old, "new_string": new}}
