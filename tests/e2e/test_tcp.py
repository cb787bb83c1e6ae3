"""`crush-ls --tcp HOST:PORT` serves the same protocol on a socket."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from crush_ls.transport.framing import ContentLength, FrameError, encode
from tests.conftest import SERVER_CMD, server_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the server is still importing; nothing to await across processes


class Framed:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = ContentLength()
        self.ready: list[bytes] = []

    def send(self, message: dict) -> None:
        self.sock.sendall(encode(message))

    def receive(self) -> dict:
        while not self.ready:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            for item in self.decoder.feed(chunk):
                assert not isinstance(item, FrameError), item
                self.ready.append(item)
        return json.loads(self.ready.pop(0))

    def until(self, predicate) -> dict:
        while not predicate(message := self.receive()):
            pass
        return message


def test_tcp_serves_a_prompt_and_exits_cleanly(workspace: Path):
    port = free_port()
    proc = subprocess.Popen([*SERVER_CMD, "--tcp", f"127.0.0.1:{port}"], env=server_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        link = Framed(connect(port, time.monotonic() + 20))
        link.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "capabilities": {}, "workspaceFolders": [{"uri": workspace.as_uri(), "name": "ws"}],
            "initializationOptions": {"model": {"provider": "echo"}}}})
        assert link.until(lambda m: m.get("id") == 1)["result"]["serverInfo"]["name"] == "crush-ls"
        link.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        link.send({"jsonrpc": "2.0", "id": 2, "method": "session/create", "params": {}})
        session = link.until(lambda m: m.get("id") == 2)["result"]["id"]
        link.send({"jsonrpc": "2.0", "id": 3, "method": "agent/sendMessage",
                   "params": {"sessionId": session, "prompt": "over tcp", "runId": "t1"}})
        assert link.until(lambda m: m.get("id") == 3)["result"]["runId"] == "t1"
        done = link.until(lambda m: m.get("params", {}).get("type") == "run_complete")
        assert done["params"]["text"] == "over tcp"
        link.send({"jsonrpc": "2.0", "id": 4, "method": "shutdown"})
        link.until(lambda m: m.get("id") == 4)
        link.send({"jsonrpc": "2.0", "method": "exit"})
        assert proc.wait(10) == 0
        assert proc.stdout.read() == b"", "nothing but the socket carries the protocol"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
