"""Both wires through real stdio: `python -m crush_ls` (LSP framing, tests.raw.RawServer) and
`python -m crush_ls acp` (newline-delimited), and `drive`, which sends generated shots and
checks that every owed id gets exactly one answer while the process lives."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import attrs

from crush_ls.transport.framing import ContentLength, JsonLines
from tests.conftest import server_env
from tests.raw import FramedReader
from tests.reliability.hostile import Shot


class Wire(Protocol):
    proc: subprocess.Popen
    received: list[dict[str, Any]]

    def write_bytes(self, data: bytes) -> None: ...
    def read_message(self, timeout: float = 10) -> dict[str, Any] | None: ...


def frame_lsp(shot: Shot) -> bytes:
    return shot.data if shot.framed else ContentLength.frame(shot.data)


def frame_acp(shot: Shot) -> bytes:
    return shot.data if shot.framed else shot.data + b"\n"


class AcpRaw(FramedReader):
    """`crush-ls acp` on exact bytes: lines in, messages out in wire order."""

    def __init__(self, folder: Path, script: dict[str, Any], stderr: Any, env: dict[str, str] | None = None) -> None:
        path = folder.parent / f"{folder.name}-script.json"
        path.write_text(json.dumps(script))
        self.proc = subprocess.Popen([sys.executable, "-m", "crush_ls", "acp", "--script", str(path)], cwd=folder,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                     env=server_env(**(env or {})))
        self._decoder = JsonLines(max_frame=1 << 40)
        self._ready: collections.deque[bytes] = collections.deque()
        self.received: list[dict[str, Any]] = []
        self._next = 0

    def write_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any, timeout: float = 20) -> dict[str, Any]:
        self._next += 1
        msg_id = f"c{self._next}"
        self.write_bytes(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()
                         + b"\n")
        while True:
            message = self.read_message(timeout)
            assert message is not None, "the agent closed its output"
            if message.get("id") == msg_id and "method" not in message:
                return message

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()


@attrs.define
class Tally:
    """What a drive sent and got: the figures docs/reliability.md reports."""

    messages: int = 0
    faults: int = 0
    owed: int = 0
    answers: collections.Counter = attrs.Factory(collections.Counter)
    by_kind: collections.Counter = attrs.Factory(collections.Counter)


def answers_of(wire: Wire, start: int) -> Iterable[dict[str, Any]]:
    return (m for m in wire.received[start:] if "method" not in m and "id" in m)


def drive(wire: Wire, shots: Iterable[Shot], frame: Any, sync: Any, *, batch: int = 100,
          timeout: float = 60) -> Tally:
    """Send the shots `batch` at a time; after each batch, a valid request (`sync(n)` -> (bytes, id)) must be
    answered and every id owed so far answered exactly once; the process must still be running."""
    tally = Tally()
    owed: set[Any] = set()
    start = len(wire.received)
    pending: list[bytes] = []

    def flush(n: int) -> None:
        data, sync_id = sync(n)
        owed.add(sync_id)
        wire.write_bytes(b"".join(pending) + data)
        pending.clear()
        deadline = time.monotonic() + timeout
        seen = {m["id"] if not isinstance(m["id"], list | dict) else None for m in answers_of(wire, start)}
        while not owed <= seen:
            assert wire.proc.poll() is None, f"the server died (exit {wire.proc.returncode})"
            left = deadline - time.monotonic()
            assert left > 0, f"never answered: {sorted(map(str, owed - seen))[:20]}"
            message = wire.read_message(left)
            assert message is not None, "the server closed its output"
            if "method" not in message and "id" in message and not isinstance(message["id"], list | dict):
                seen.add(message["id"])

    for n, shot in enumerate(shots, 1):
        tally.messages += 1
        tally.by_kind[shot.kind] += 1
        tally.faults += shot.framed
        if shot.owed is not None:
            owed.add(shot.owed)
            tally.owed += 1
        pending.append(frame(shot))
        if n % batch == 0:
            flush(n)
    flush(-1)
    for message in answers_of(wire, start):
        if not isinstance(message["id"], list | dict):
            tally.answers[message["id"]] += 1
    twice = {i: c for i, c in tally.answers.items() if c > 1 and i is not None}
    assert not twice, f"answered more than once: {twice}"
    assert wire.proc.poll() is None
    return tally
