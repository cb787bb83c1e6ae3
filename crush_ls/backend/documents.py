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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .workspace import uri_to_path

log = logging.getLogger(__name__)


class OutOfRange(ValueError):
    """A position past the end of the document."""


class Document:
    """One open document: its text kept as lines, so a keystroke costs the lines it touches."""

    def __init__(self, uri: str, path: Path, version: int, text: str) -> None:
        self.uri = uri
        self.path = path  # resolved
        self.version = version
        self.lost = False  # a change did not fit: the mirror no longer knows the editor's text
        self._lines = split_lines(text)
        self._text: str | None = text  # joined when read, until the next change

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self._lines)
        return self._text

    def apply(self, change: dict[str, Any], encoding: str) -> None:
        """One TextDocumentContentChangeEvent: the whole text, or a range replaced."""
        new_text = change["text"]
        if not isinstance(new_text, str):
            raise OutOfRange("a change without text")
        if change.get("range") is None:
            self._lines, self._text = split_lines(new_text), new_text
            return
        first, start = self._locate(change["range"]["start"], encoding)
        last, end = self._locate(change["range"]["end"], encoding)
        if (last, end) < (first, start):
            raise OutOfRange("a range that ends before it starts")
        self._lines[first:last + 1] = split_lines(self._line(first)[:start] + new_text + self._line(last)[end:])
        self._text = None

    def _line(self, number: int) -> str:
        return self._lines[number] if number < len(self._lines) else ""

    def _locate(self, position: dict[str, Any], encoding: str) -> tuple[int, int]:
        """(line, index into that line) of an LSP Position."""
        line, character = position["line"], position["character"]
        if not isinstance(line, int) or not isinstance(character, int) or line < 0 or character < 0:
            raise OutOfRange(f"not a position: {position!r}")
        # The line after a final "\n" exists (it is empty); nothing after it does.
        if line > len(self._lines) or (line == len(self._lines) and self._lines and
                                       not self._lines[-1].endswith("\n")):
            raise OutOfRange(f"line {line} is past the end of the document")
        content = self._line(line).removesuffix("\n").removesuffix("\r")
        return line, from_units(content, character, encoding)


def split_lines(text: str) -> list[str]:
    """The lines of `text`, each with its "\n" (LSP's lines: only "\n" and "\r\n" end one here)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


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
    """`text` with one TextDocumentContentChangeEvent applied."""
    document = Document("", Path(), 0, text)
    document.apply(change, encoding)
    return document.text


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
        try:
            for change in changes:
                document.apply(change, self.encoding)
        except (OutOfRange, KeyError, TypeError) as exc:
            log.warning("didChange of %s does not fit the mirrored text (%s): the document is lost until "
                        "it is opened again", uri, exc)
            document.lost = True
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
    a, b = split_lines(old), split_lines(new)
    # The lines both share at the ends never reach the (quadratic at worst) matcher.
    head = _common_prefix(a, b)
    tail = _common_prefix(a[head:][::-1], b[head:][::-1])
    matcher = difflib.SequenceMatcher(None, a[head:len(a) - tail], b[head:len(b) - tail])
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            edits.append(_trimmed_edit(a, head + i1, head + i2, "".join(b[head + j1:head + j2]), encoding))
    return edits


def _trimmed_edit(a: list[str], i1: int, i2: int, after: str, encoding: str) -> dict[str, Any]:
    """The edit that replaces lines i1..i2 of `a` with `after`, less what both begin and end with."""
    before = "".join(a[i1:i2])
    prefix = _common_prefix(before, after)
    suffix = _common_prefix(before[prefix:][::-1], after[prefix:][::-1])
    # A position between "\r" and "\n" does not exist in LSP: keep a line end whole.
    if prefix > 0 and before[prefix - 1:prefix + 1] == "\r\n":
        prefix -= 1
    if suffix > 0 and before[len(before) - suffix - 1:len(before) - suffix + 1] == "\r\n":
        suffix -= 1
    return {"range": {"start": _position_in(a, i1, prefix, encoding),
                      "end": _position_in(a, i1, len(before) - suffix, encoding)},
            "newText": after[prefix:len(after) - suffix]}


def _position_in(lines: list[str], line: int, offset: int, encoding: str) -> dict[str, int]:
    """The Position `offset` characters after the start of `lines[line]`."""
    while line < len(lines) and offset >= len(lines[line]) and lines[line].endswith("\n"):
        offset -= len(lines[line])
        line += 1
    return {"line": line, "character": to_units(lines[line] if line < len(lines) else "", offset, encoding)}


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many items (characters, lines) `a` and `b` share at their start: a binary search
    of slice comparisons, which run at C speed (a loop over 2 MB of characters does not)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low
