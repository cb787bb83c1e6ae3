"""Message framing: JSON-RPC bodies in and out of a byte stream. Stdlib only.

Two framings with one interface, so a connection can be built over either:
`ContentLength` (LSP: `Content-Length: N\\r\\n\\r\\n` + N bytes) and
`JsonLines` (newline-delimited JSON, as ACP speaks). Each has `frame(body)`
to write and a decoder, `feed(data)`, that yields every body (bytes) or
`FrameError` the new bytes complete. Decoders look at each byte once:
feeding a stream a byte at a time costs what feeding it whole does.

A decoder never gives up on its stream. A malformed header is reported as a
`FrameError` and the decoder resynchronises on the next `Content-Length:`;
a frame over `max_frame` bytes is reported and its body skipped unread.
The terminal client imports this module: it must stay free of pygls and of
anything slow to import (orjson takes a millisecond).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

DEFAULT_MAX_FRAME = 64 * 1024 * 1024
MAX_FRAME_ENV = "CRUSH_LS_MAX_FRAME"  # bytes; a frame above it is refused unread
MAX_HEADER = 8192  # LSP headers are a few dozen bytes; more is not a header
MARKER = b"Content-Length:"
HEADER_END = b"\r\n\r\n"
SNIFF = 1024  # bytes of a refused body kept to find its id
_LEADING_ID = re.compile(rb'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


@dataclass(frozen=True)
class FrameError:
    """Bytes that are not a frame (`too_large` False) or a frame refused for its size.

    `msg_id` is the id of a refused request when its body starts with one.
    """

    message: str
    too_large: bool = False
    msg_id: Any = None


Item = bytes | FrameError


class Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[Item]:
        """Take `data`; yield each body or error it completes (consume the iterator)."""
        ...

    @property
    def pending(self) -> int:
        """Bytes received and not yet part of a yielded item."""
        ...

    @staticmethod
    def frame(body: bytes) -> bytes:
        """`body` framed the way this decoder reads it."""
        ...


def dumps(message: Any) -> bytes:
    """Compact ASCII JSON, as `json.dumps(message, separators=(",", ":"))` writes it.

    orjson is 8x faster on a notification (1 µs against 8 µs: the largest cost of
    a streamed delta); what it cannot write as json does (non-ASCII text, which
    the wire carries `\\u` escaped; lone surrogates, integers beyond 64 bits,
    keys that are not strings) is left to json.
    """
    try:
        body = orjson.dumps(message)
    except TypeError:  # orjson.JSONEncodeError
        pass
    else:
        if body.isascii():
            return body
    return json.dumps(message, separators=(",", ":")).encode()


def encode(message: Any) -> bytes:
    """One message as a Content-Length frame (ASCII JSON: lone surrogates stay escaped)."""
    return ContentLength.frame(dumps(message))


def params_frame(head: bytes, params: Any) -> bytes:
    """`encode` of a message whose JSON up to its params' value is `head` (e.g.
    `{"jsonrpc":"2.0","method":"agent/notification","params":`), byte for byte: a streamed delta
    is one of these, and building and encoding its envelope each time was a fifth of its cost."""
    body = dumps(params)
    return b"Content-Length: %d\r\n\r\n%s%s}" % (len(head) + len(body) + 1, head, body)


def max_frame_from_env(default: int = DEFAULT_MAX_FRAME) -> int:
    value = os.environ.get(MAX_FRAME_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else default


def _sniff_id(head: bytes) -> Any:
    match = _LEADING_ID.match(head)
    if match is None:
        return None
    try:
        return json.loads(match[1])
    except ValueError:
        return None


def _too_large(length: int, limit: int, head: bytes) -> FrameError:
    return FrameError(f"the frame is {length} bytes, more than the limit of {limit} ({MAX_FRAME_ENV})",
                      too_large=True, msg_id=_sniff_id(head))


def _parse_header(block: bytes) -> tuple[int | None, str]:
    """The Content-Length of a header block, or None and why it is not a header."""
    length = None
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name or not name.isascii() or not name.replace(b"-", b"").isalnum():
            return None, f"a header line is not `Name: value` ({bytes(line[:40])!r})"
        if name.strip().lower() == b"content-length":
            digits = value.strip()
            if not digits.isdigit() or len(digits) > 18:
                return None, f"Content-Length is not a length ({bytes(digits[:40])!r})"
            length = int(digits)
    if length is None:
        return None, "the header has no Content-Length"
    return length, ""


class _Buffered:
    """What both decoders share: the bytes received, how far they are consumed and scanned."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._pos = 0  # start of what is not yet consumed
        self._scanned = 0  # _buffer[_pos:_scanned] holds no frame end yet (scan only new bytes)

    @property
    def pending(self) -> int:
        return len(self._buffer) - self._pos

    def feed(self, data: bytes) -> Iterator[Item]:
        self._buffer += data
        return self._items()

    def _items(self) -> Iterator[Item]:
        raise NotImplementedError


class ContentLength(_Buffered):
    """LSP base protocol framing; the decoder half keeps state, so one per stream."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        super().__init__(max_frame)  # _scanned: no header end (or no marker, when resyncing) before it
        self._body: int | None = None  # length of the body being read, once its header is parsed
        self._skip = 0  # bytes of a refused body still to discard
        self._refused: tuple[int, bytearray] | None = None  # a refused frame's length and its first bytes
        self._resync = False

    @staticmethod
    def frame(body: bytes) -> bytes:
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _items(self) -> Iterator[Item]:
        while (item := self._next()) is not None:
            yield item
        self._compact()

    def _compact(self) -> None:
        del self._buffer[:self._pos]
        self._scanned -= self._pos
        self._pos = 0

    def _next(self) -> Item | None:
        if self._skip:
            return self._skip_body()
        if self._body is not None:
            return self._read_body()
        if self._resync and not self._find_marker():
            return None
        return self._read_header()

    def _read_header(self) -> Item | None:
        end = self._buffer.find(HEADER_END, max(self._pos, self._scanned))
        if end < 0:
            self._scanned = max(self._pos, len(self._buffer) - len(HEADER_END) + 1)
            if len(self._buffer) - self._pos > MAX_HEADER:
                return self._fault(f"no end of header within {MAX_HEADER} bytes")
            return None
        length, problem = _parse_header(bytes(self._buffer[self._pos:end]))
        if length is None:
            return self._fault(problem)
        self._pos = self._scanned = end + len(HEADER_END)
        if length > self.max_frame:
            self._skip, self._refused = length, (length, bytearray())
            return self._skip_body()
        self._body = length
        return self._read_body()

    def _read_body(self) -> Item | None:
        assert self._body is not None
        end = self._pos + self._body
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[self._pos:end])
        self._pos = self._scanned = end
        self._body = None
        if self._pos > 1 << 20:  # many frames in one read: keep the buffer from holding them all
            self._compact()
        return body

    def _skip_body(self) -> Item | None:
        """Discard a refused body as it arrives; report it once its first bytes are seen."""
        taken = min(self._skip, len(self._buffer) - self._pos)
        if self._refused is not None:
            self._refused[1].extend(self._buffer[self._pos:self._pos + min(taken, SNIFF)])
        self._skip -= taken
        self._pos += taken
        self._compact()
        refused = self._refused
        if refused is not None and (len(refused[1]) >= SNIFF or not self._skip):
            self._refused = None
            return _too_large(refused[0], self.max_frame, bytes(refused[1]))
        return None if self._skip else self._next()

    def _fault(self, problem: str) -> FrameError:
        # Look for the next header after the first byte of this one.
        self._pos += 1
        self._scanned = self._pos
        self._resync = True
        return FrameError(f"not a frame: {problem}")

    def _find_marker(self) -> bool:
        found = self._buffer.find(MARKER, max(self._pos, self._scanned))
        if found < 0:
            # Drop what cannot start a header; keep a tail that may be the marker's beginning.
            self._pos = max(self._pos, len(self._buffer) - len(MARKER) + 1)
            self._scanned = self._pos
            return False
        self._pos = self._scanned = found
        self._resync = False
        return True


class JsonLines(_Buffered):
    """Newline-delimited JSON (ACP): one body per line, blank lines ignored."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._dropping = False  # inside a line over the limit: discard up to its end

    @staticmethod
    def frame(body: bytes) -> bytes:
        return body + b"\n"

    def _items(self) -> Iterator[Item]:
        while (end := self._buffer.find(b"\n", max(self._pos, self._scanned))) >= 0:
            line = bytes(self._buffer[self._pos:end])
            self._pos = self._scanned = end + 1
            dropping, self._dropping = self._dropping, False
            if len(line) > self.max_frame and not dropping:
                yield self._too_long(line)
            elif not dropping and line.strip():
                yield line.strip()
        self._scanned = len(self._buffer)
        if len(self._buffer) - self._pos > self.max_frame:
            head = bytes(self._buffer[self._pos:self._pos + SNIFF])
            self._pos = self._scanned = len(self._buffer)
            if not self._dropping:
                self._dropping = True
                yield self._too_long(head)
        del self._buffer[:self._pos]
        self._scanned -= self._pos
        self._pos = 0

    def _too_long(self, head: bytes) -> FrameError:
        return FrameError(f"a line is longer than the limit of {self.max_frame} bytes ({MAX_FRAME_ENV})",
                          too_large=True, msg_id=_sniff_id(head[:SNIFF]))


__all__ = ["DEFAULT_MAX_FRAME", "ContentLength", "Decoder", "FrameError", "JsonLines", "encode",
           "max_frame_from_env"]
