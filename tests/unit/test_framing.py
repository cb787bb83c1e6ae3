"""The framing decoders, byte by byte: bodies, faults and their recovery, the size limit."""

from __future__ import annotations

import json

import pytest

from crush_ls.transport.framing import ContentLength, FrameError, JsonLines, encode, params_frame

GOOD = [{"jsonrpc": "2.0", "id": i, "method": "agent/status", "params": {}} for i in range(3)]
STREAM = b"".join(encode(m) for m in GOOD)


def decode(decoder: ContentLength | JsonLines, data: bytes, step: int | None = None) -> list[object]:
    step = step or len(data) or 1
    items: list[object] = []
    for start in range(0, len(data), step):
        items += decoder.feed(data[start:start + step])
    return [json.loads(i) if isinstance(i, bytes) else i for i in items]


@pytest.mark.parametrize("step", [1, 2, 7, None])
def test_frames_split_anywhere_decode_alike(step):
    assert decode(ContentLength(), STREAM, step) == GOOD


def test_other_headers_are_accepted():
    body = json.dumps(GOOD[0]).encode()
    data = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert decode(ContentLength(), data + body) == [GOOD[0]]


FAULTS = {
    "missing_header": json.dumps(GOOD[0]).encode(),
    "no_content_length": b"Content-Type: x\r\n\r\n{}",
    "negative_length": b"Content-Length: -5\r\n\r\n{}",
    "plus_length": b"Content-Length: +2\r\n\r\n{}",
    "non_numeric_length": b"Content-Length: two\r\n\r\n{}",
    "lf_line_ends": b"Content-Length: 2\n\n{}",
    "line_without_colon": b"Content-Length 2\r\n\r\n{}",
    "nul_bytes_before_the_header": b"\0\0\0" + encode(GOOD[1]),
    "huge_number": b"Content-Length: " + b"9" * 4300 + b"\r\n\r\n{}",
    "no_header_end": b"x" * 20000,
    "blank_line": b"\r\n",
}


@pytest.mark.parametrize("name", FAULTS)
@pytest.mark.parametrize("step", [1, 5, None])
def test_a_fault_is_reported_once_and_the_next_frames_decode(name, step):
    if step == 1 and name in ("huge_number", "no_header_end"):
        step = 97  # a byte at a time works too, only slowly
    items = decode(ContentLength(), FAULTS[name] + STREAM, step)
    errors = [i for i in items if isinstance(i, FrameError)]
    assert len(errors) == 1 and not errors[0].too_large, items
    assert [i for i in items if not isinstance(i, FrameError)][-3:] == GOOD


def test_a_frame_over_the_limit_is_refused_with_its_id_and_skipped_unbuffered():
    decoder = ContentLength(max_frame=100)
    big = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "agent/sendMessage", "params": {"prompt": "x" * 5000}})
    items = decode(decoder, encode(json.loads(big))[:1200])
    assert len(items) == 1 and items[0].too_large and items[0].msg_id == 7
    assert decoder.pending == 0
    items = []
    rest = encode(json.loads(big))[1200:] + STREAM
    for start in range(0, len(rest), 512):
        items += decode(decoder, rest[start:start + 512])
        assert decoder.pending <= 512
    assert items == GOOD


def test_a_declared_length_over_the_limit_is_refused_before_its_body():
    decoder = ContentLength(max_frame=10)
    items = decode(decoder, b"Content-Length: 99999999999\r\n\r\n" + b'{"jsonrpc":"2.0","id":"a"' + b" " * 2000)
    assert len(items) == 1 and items[0].too_large and items[0].msg_id == "a"
    assert decoder.pending == 0


def test_json_lines():
    data = b"".join(JsonLines.frame(json.dumps(m).encode()) for m in GOOD)
    assert decode(JsonLines(), b"\n" + data, 3) == GOOD
    decoder = JsonLines(max_frame=80)
    long_line = b'{"jsonrpc":"2.0","id":9,"method":"x","params":"' + b"y" * 500 + b'"}\n'
    items = decode(decoder, long_line + data, 40)
    assert isinstance(items[0], FrameError) and items[0].msg_id == 9 and items[1:] == GOOD


@pytest.mark.parametrize("params", [
    {"type": "text_delta", "text": "plain", "seq": 3},
    {"type": "text_delta", "text": "h\u00e9llo \ud800 \U0001f600", "seq": 4},  # non-ASCII, a lone surrogate
    {"n": 2**70, "list": [1, None, True]},  # beyond orjson's integers
])
def test_a_frame_around_encoded_params_is_the_frame_of_the_whole_message(params):
    head = b'{"jsonrpc":"2.0","method":"agent/notification","params":'
    whole = {"jsonrpc": "2.0", "method": "agent/notification", "params": params}
    assert params_frame(head, params) == encode(whole)
    assert decode(ContentLength(), params_frame(head, params)) == [json.loads(json.dumps(whole))]
