"""The editor's open documents, mirrored from LSP document sync (PROTOCOL "Documents and edits").

A plain class, fed by the server's `textDocument/didOpen`, `didChange` and
`didClose` handlers: only `file:` documents inside a workspace folder are
kept, by their resolved path (the path the tools resolve too). Positions are
counted in the connection's negotiated encoding (utf-16, utf-8 or utf-32).

A change that does not fit the text leaves the mirror out of step with the
editor: the document is then marked `lost`, so the tools neither read it
nor write under it until the editor opens it again.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from .workspace import uri_to_path

log = logging.getLogger(__name__)


class OutOfRange(ValueError):
    """A position past the end of the document."""


@attrs.define(eq=False)
class Document:
    uri: str
    path: Path  # resolved
    version: int
    text: str
    lost: bool = False  # a change did not fit: the mirror no longer knows the editor's text


def _units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def to_units(line: str, index: int, encoding: str) -> int:
    """The character offset of `line[:index]` in `encoding`'s code units."""
    head = line[:index]
    if encoding == "utf-32" or head.isascii():
        return len(head)
    return sum(_units(c, encoding) for c in head)


def from_units(line: str, units: int, encoding: str) -> int:
    """The index into `line` of a character offset in code units (past the end: the end, as LSP says)."""
    if encoding == "utf-32" or line.isascii():
        return min(units, len(line))
    seen = 0
    for index, char in enumerate(line):
        if seen >= units:
            return index
        seen += _units(char, encoding)
    return len(line)


def line_start(text: str, line: int) -> int:
    """The offset where `line` (0-based) starts; OutOfRange past the last line."""
    start = 0
    for _ in range(line):
        newline = text.find("\n", start)
        if newline < 0:
            raise OutOfRange(f"line {line} is past the end of the document")
        start = newline + 1
    return start


def offset_of(text: str, position: dict[str, Any], encoding: str) -> int:
    """The offset in `text` of an LSP Position."""
    line, character = position["line"], position["character"]
    if not isinstance(line, int) or not isinstance(character, int) or line < 0 or character < 0:
        raise OutOfRange(f"not a position: {position!r}")
    start = line_start(text, line)
    end = text.find("\n", start)
    content = text[start:] if end < 0 else text[start:end]
    return start + from_units(content.removesuffix("\r"), character, encoding)


def position_of(text: str, offset: int, encoding: str) -> dict[str, int]:
    """The LSP Position of an offset in `text`."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return {"line": line, "character": to_units(text[start:offset], offset - start, encoding)}


def apply_change(text: str, change: dict[str, Any], encoding: str) -> str:
    """One TextDocumentContentChangeEvent: the whole text, or a range replaced."""
    new_text = change["text"]
    if not isinstance(new_text, str):
        raise OutOfRange("a change without text")
    if change.get("range") is None:
        return new_text
    start = offset_of(text, change["range"]["start"], encoding)
    end = offset_of(text, change["range"]["end"], encoding)
    if end < start:
        raise OutOfRange("a range that ends before it starts")
    return text[:start] + new_text + text[end:]


class Documents:
    """The open documents of one connection, by resolved path."""

    def __init__(self, inside: Callable[[Path], bool] = lambda path: True, encoding: str = "utf-16") -> None:
        self._inside = inside  # is this path in one of the connection's workspace folders?
        self.encoding = encoding
        self._by_uri: dict[str, Document] = {}
        self._by_path: dict[Path, Document] = {}
        self._changed = asyncio.Event()  # set and replaced at every change, for `wait_for_text`

    def open(self, uri: str, version: int, text: str) -> Document | None:
        """didOpen; None when the document is not one crush-ls mirrors."""
        if not uri.startswith("file:"):
            return None
        try:
            path = Path(os.path.realpath(uri_to_path(uri)))
        except ValueError:
            return None
        if not self._inside(path):
            return None
        document = Document(uri, path, version, text)
        self.close(uri)
        self._by_uri[uri] = self._by_path[path] = document
        self._notify()
        return document

    def change(self, uri: str, version: int, changes: Iterable[dict[str, Any]]) -> None:
        """didChange: the changes in order; one that does not fit marks the document lost."""
        document = self._by_uri.get(uri)
        if document is None:
            log.info("didChange of %s, which is not mirrored: ignored", uri)
            return
        text = document.text
        try:
            for change in changes:
                text = apply_change(text, change, self.encoding)
        except (OutOfRange, KeyError, TypeError) as exc:
            log.warning("didChange of %s does not fit the mirrored text (%s): the document is lost until "
                        "it is opened again", uri, exc)
            document.lost = True
        else:
            document.text = text
        document.version = version
        self._notify()

    def close(self, uri: str) -> None:
        document = self._by_uri.pop(uri, None)
        if document is not None and self._by_path.get(document.path) is document:
            del self._by_path[document.path]

    def get(self, path: Path) -> Document | None:
        return self._by_path.get(path)

    def under(self, folder: Path) -> list[Document]:
        """The documents inside `folder` (or that file itself)."""
        return [d for p, d in self._by_path.items() if p == folder or folder in p.parents]

    async def wait_for_text(self, path: Path, text: str, timeout: float) -> bool:
        """Whether the document has `text` within `timeout` seconds (the didChange of an applied edit)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            document = self._by_path.get(path)
            if document is not None and not document.lost and document.text == text:
                return True
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), deadline - loop.time())
            except TimeoutError:
                return False

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def text_edits(old: str, new: str, encoding: str) -> list[dict[str, Any]]:
    """Minimal LSP TextEdits that turn `old` into `new`: the changed runs of lines of a diff,
    each trimmed to the characters that differ (ranges in `old`, as a WorkspaceEdit wants)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    edits = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag == "equal":
            continue
        before, after = "".join(a[i1:i2]), "".join(b[j1:j2])
        prefix = _common_prefix(before, after)
        suffix = _common_prefix(before[prefix:][::-1], after[prefix:][::-1])
        # A position between "\r" and "\n" does not exist in LSP: keep a line end whole.
        if prefix > 0 and old[starts[i1] + prefix - 1:starts[i1] + prefix + 1] == "\r\n":
            prefix -= 1
        if suffix > 0 and old[starts[i2] - suffix - 1:starts[i2] - suffix + 1] == "\r\n":
            suffix -= 1
        start, end = starts[i1] + prefix, starts[i2] - suffix
        edits.append({"range": {"start": position_of(old, start, encoding), "end": position_of(old, end, encoding)},
                      "newText": after[prefix:len(after) - suffix]})
    return edits


def _common_prefix(a: str, b: str) -> int:
    """How many characters `a` and `b` share at their start."""
    n = min(len(a), len(b))
    for index in range(n):
        if a[index] != b[index]:
            return index
    return n
