"""The file tools' `Files` over LSP document sync and `workspace/applyEdit` (PROTOCOL "Documents and edits").

A document open in the editor is read from the mirror (`documents.Documents`)
and changed with a versioned `workspace/applyEdit` of minimal edits, so the
change lands in the editor's undo history and never clobbers unsaved text.
Whether the disk is written then depends on whether the buffer had unsaved
changes of the person's before the edit. Files that are not open are none of
this class's business: the tools read and write them on disk as always.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import protocol as p
from ..tools.base import EditorConflict
from ..tools.editing import read_text, write_locked
from ..tools.paths import ToolInputError
from .client import Client, ClientDeclined
from .diagnostics import ClientDiagnostics
from .documents import Document, Documents, position_of, text_edits

log = logging.getLogger(__name__)

ANSWER_TIMEOUT = 10.0  # workspace/applyEdit and agent/saveDocument
CONFIRM_TIMEOUT = 2.0  # the didChange that shows an applied edit (Neovim debounces changes by 150 ms)


def text_stamp(text: str) -> float:
    """The freshness stamp of an open document's text: negative, so never a file's mtime."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).digest()
    return -1.0 - int.from_bytes(digest, "big")


class EditorFiles:
    """`tools.base.Files` for an LSP client: its open documents, edited through the editor."""

    def __init__(self, client: Client, documents: Documents, follow: Callable[[], bool],
                 where: Callable[[Path], tuple[str, str]], diagnostics: ClientDiagnostics | None = None) -> None:
        self._client = client
        self.diagnostics = diagnostics  # the client answers agent/diagnostics: edits report the file's
        self.documents = documents
        self._follow = follow  # initializationOptions.followAgent
        self._where = where  # a path as a person reads it (relative to its workspace), and its URI
        self.shown: set[asyncio.Task[Any]] = set()  # window/showDocument requests not answered yet

    def covers(self, path: Path) -> bool:
        return self.documents.get(path) is not None

    async def read_text(self, session_id: str, path: Path) -> str:
        return self._document(path).text

    def stamp(self, path: Path, text: str) -> float | None:
        return text_stamp(text)

    def open_texts(self, under: Path) -> dict[Path, str]:
        return {d.path: d.text for d in self.documents.under(under) if not d.lost}

    async def write_text(self, session_id: str, path: Path, content: str, based_on: str | None = None) -> str | None:
        document = self._document(path)
        if based_on is not None and document.text != based_on:
            raise EditorConflict(f"{path} changed in the editor")
        disk = await asyncio.to_thread(_disk_text, path)
        unsaved = disk != document.text
        display = self._where(path)[0]
        if not self._client.capabilities.apply_edit:
            if unsaved:
                raise ToolInputError(f"{display} has unsaved changes in the editor, and the editor takes no edits "
                                     "from crush-ls: ask the person to save or close it first")
            await asyncio.to_thread(write_locked, path, content)
            return None
        await self._apply(document, content, display)
        if unsaved:
            return (f"{display} had unsaved changes in the editor: the edit is in the editor's buffer, not saved; "
                    "the file on disk differs.")
        if not await self._saved_by_editor(document.uri):
            await asyncio.to_thread(write_locked, path, content)
        return None

    async def after_edit(self, session_id: str, path: Path, old: str, new: str) -> str | None:
        """Follow the agent: show the changed lines (not awaited: the tool call goes on).
        The note: the file's diagnostics once the editor has checked the change."""
        if self._follow() and self._client.capabilities.show_document:
            task = asyncio.ensure_future(self._show(path, old, new))
            self.shown.add(task)
            task.add_done_callback(self.shown.discard)
        return await self.diagnostics.after_edit(path) if self.diagnostics is not None else None

    # ------------------------------------------------------------------ the steps
    def _document(self, path: Path) -> Document:
        document = self.documents.get(path)
        if document is None:
            raise EditorConflict(f"{path} was closed in the editor")
        if document.lost:
            raise ToolInputError(f"crush-ls lost track of the editor's text of {self._where(path)[0]} (a change "
                                 "did not fit): ask the person to close and reopen it")
        return document

    async def _apply(self, document: Document, content: str, display: str) -> None:
        """One workspace/applyEdit, confirmed by the document reaching `content`; EditorConflict if not."""
        edits = text_edits(document.text, content, self.documents.encoding)
        if self._client.capabilities.document_changes:
            edit: dict[str, Any] = {"documentChanges": [
                {"textDocument": {"uri": document.uri, "version": document.version}, "edits": edits}]}
        else:
            edit = {"changes": {document.uri: edits}}
        try:
            answer = await self._client.request(p.APPLY_EDIT, {"label": f"crush: edit {display}", "edit": edit},
                                                ANSWER_TIMEOUT)
        except ClientDeclined as exc:
            raise EditorConflict(str(exc)) from exc
        except TimeoutError as exc:
            raise ToolInputError(f"the editor did not answer the edit of {display} within {ANSWER_TIMEOUT:.0f} s; "
                                 "view the file again before another change") from exc
        if not (isinstance(answer, dict) and answer.get("applied") is True):
            reason = answer.get("failureReason") if isinstance(answer, dict) else None
            raise EditorConflict(f"the editor did not apply the edit{f': {reason}' if reason else ''}")
        # Neovim answers applied: true for an edit it skipped as stale: only the didChange tells.
        if not await self.documents.wait_for_text(document.path, content, CONFIRM_TIMEOUT):
            raise EditorConflict("the editor's text is not the edited text")

    async def _saved_by_editor(self, uri: str) -> bool:
        if not self._client.capabilities.save_document:
            return False
        try:
            answer = await self._client.request(p.SAVE_DOCUMENT, {"uri": uri}, ANSWER_TIMEOUT)
        except (ClientDeclined, TimeoutError) as exc:
            log.info("agent/saveDocument of %s: %s; crush-ls writes the file", uri, exc or "no answer")
            return False
        return isinstance(answer, dict) and answer.get("saved") is True

    async def _show(self, path: Path, old: str, new: str) -> None:
        selection = changed_lines(old, new, self.documents.encoding)
        document = self.documents.get(path)
        uri = document.uri if document is not None else self._where(path)[1]
        try:
            await self._client.request(p.SHOW_DOCUMENT, {"uri": uri, "selection": selection,
                                                         "takeFocus": False}, ANSWER_TIMEOUT)
        except (ClientDeclined, TimeoutError) as exc:
            log.info("window/showDocument of %s: %s", path, exc or "no answer")


def _disk_text(path: Path) -> str | None:
    """The file's text as on disk (None: no file, or none that reads as text)."""
    try:
        current = read_text(path)
    except (ToolInputError, OSError):
        return None
    return current.raw if current.exists else None


def changed_lines(old: str, new: str, encoding: str) -> dict[str, Any]:
    """The Range of `new` from the first to the end of the last line that differs from `old`."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    first = 0
    while first < min(len(a), len(b)) and a[first] == b[first]:
        first += 1
    last = len(b)
    while last > first and len(a) - (len(b) - last) > first and a[len(a) - (len(b) - last) - 1] == b[last - 1]:
        last -= 1
    start = sum(len(line) for line in b[:first])
    end = start + len("".join(b[first:last]).rstrip("\r\n"))
    return {"start": position_of(new, start, encoding), "end": position_of(new, end, encoding)}
