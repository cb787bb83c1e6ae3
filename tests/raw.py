"""A raw stdio client: exact bytes in, messages out in wire order.

pytest-lsp hides the order of responses and notifications; tests about
ordering, malformed input and process exit use this instead.
"""

from __future__ import annotations

import collections
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from crush_ls.transport.framing import ContentLength, Decoder, FrameError
from tests.conftest import SERVER_CMD, server_env


class FramedReader:
    """Reads a child's stdout as the messages its decoder cuts out, in wire order (LSP or ACP framing)."""

    proc: subprocess.Popen[bytes]
    _decoder: Decoder
    _ready: collections.deque[bytes]
    received: list[dict[str, Any]]

    def read_message(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next message, or None at end of output."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete message within {timeout}s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                for item in self._decoder.feed(chunk):
                    assert not isinstance(item, FrameError), f"the server wrote something that is not a message: {item}"
                    self._ready.append(item)
        message = json.loads(self._ready.popleft())
        self.received.append(message)
        return message


class RawServer(FramedReader):
    def __init__(self, folder: Path, init_options: dict[str, Any] | None = None, *,
                 capabilities: dict[str, Any] | None = None, initialize: bool = True,
                 env: dict[str, str] | None = None, stderr: Any = subprocess.PIPE) -> None:
        self.proc = subprocess.Popen(SERVER_CMD, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, env=server_env(**(env or {})))
        self.folder = folder
        self.uri = folder.as_uri()
        self._decoder = ContentLength(max_frame=1 << 40)
        self._ready: collections.deque[bytes] = collections.deque()
        self._next_id = 0
        self.received: list[dict[str, Any]] = []
        if initialize:
            result = self.request("initialize", {
                "processId": os.getpid(), "capabilities": capabilities or {},
                "workspaceFolders": [{"uri": self.uri, "name": folder.name}],
                "initializationOptions": init_options,
            })
            assert "result" in result, result
            self.notify("initialized", {})

    # -------------------------------------------------------------- writing
    def write_raw(self, body: bytes) -> None:
        self.write_bytes(ContentLength.frame(body))

    def write_bytes(self, data: bytes) -> None:
        """Exactly these bytes, framed or not."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def write(self, message: dict[str, Any]) -> None:
        self.write_raw(json.dumps(message).encode())

    def write_together(self, *messages: dict[str, Any]) -> None:
        """Several messages in one write: the server reads them all in one go (before any run starts)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(ContentLength.frame(json.dumps(m).encode()) for m in messages))
        self.proc.stdin.flush()

    def send_request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        if msg_id is None:
            self._next_id += 1
            msg_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.write(message)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.write({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any = None, timeout: float = 10) -> dict[str, Any]:
        msg_id = self.send_request(method, params)
        return self.read_until(lambda m: m.get("id") == msg_id and "method" not in m, timeout)

    # -------------------------------------------------------------- reading
    def read_until(self, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = self.read_message(max(0.01, deadline - time.monotonic()))
            if message is None:
                raise EOFError("server closed its output")
            if predicate(message):
                return message

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def run_complete_of(run_id: str):
    return lambda m: (m.get("method") == "agent/notification" and m["params"]["type"] == "run_complete"
                      and m["params"]["runId"] == run_id)


__all__ = ["RawServer", "run_complete_of", "sys"]
