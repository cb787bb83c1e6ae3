"""How fast crush-ls accepts a prompt while it streams, starts, and how much memory it holds.

A raw stdio client (no pytest-lsp, no pygls) measures, in one run:
  1. `agent/status` round trip on an idle server (p50, p99),
  2. `agent/sendMessage` response latency (p50, p99) over PROMPTS prompts while
     100 sessions stream with the scripted provider,
  3. process start -> `initialize` response, crush-ls against a bare pygls server,
  4. RSS after 1000 sessions were created and each ran a prompt.

Targets (issue 2): accept p99 < 5 ms under load; accept p50 / idle p50 < 1.5;
start within 10% of bare pygls. Usage: python bench/accept_latency.py [--prompts 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from crush_ls.transport.framing import ContentLength, FrameError, encode

HERE = Path(__file__).resolve().parent
LONG_TEXT = "streaming tokens " * 4000  # long enough to stream through the whole measurement
SCRIPT = {"responses": [
    {"when": "stream", "events": [{"text": LONG_TEXT, "chunkSize": 8, "delayMs": 20}]},
    {"events": [{"text": "ok"}]},
]}


NOTIFICATION_PREFIX = b'{"jsonrpc":"2.0","method":"agent/notification"'


class Client:
    """Writes requests from the caller's thread; a reader thread parses everything the server sends."""

    def __init__(self, cmd: list[str], cwd: Path | None = None) -> None:
        env = {**os.environ, "CRUSH_GLOBAL_CONFIG": "/nonexistent"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=cwd, env=env)
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._waiters: dict[int, threading.Event] = {}
        self.responses: dict[int, tuple[float, dict[str, Any]]] = {}
        self.notifications = 0
        self.completed = 0
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        decoder = ContentLength(max_frame=1 << 40)
        while chunk := os.read(fd, 1 << 16):
            for body in decoder.feed(chunk):
                assert not isinstance(body, FrameError), body
                self._on_body(body, time.perf_counter())

    def _on_body(self, body: bytes, now: float) -> None:
        if self._cheap_notifications and body.startswith(NOTIFICATION_PREFIX):
            # Count without parsing: this thread shares the GIL with the one timing requests.
            self.notifications += 1
            self.completed += b'"type":"run_complete"' in body
            return
        message = json.loads(body)
        if "id" in message and "method" not in message:
            with self._lock:
                self.responses[message["id"]] = (now, message)
                event = self._waiters.pop(message["id"], None)
            if event:
                event.set()
        elif message.get("method") == "agent/notification":
            self.notifications += 1
            self.on_notification(message["params"], now)
            if message["params"]["type"] == "run_complete":
                self.completed += 1

    @property
    def _cheap_notifications(self) -> bool:
        return type(self).on_notification is Client.on_notification

    def on_notification(self, params: dict[str, Any], received: float) -> None:
        """Called on the reader thread for each `agent/notification` (benches that time them override it)."""

    def request(self, method: str, params: Any) -> tuple[float, dict[str, Any]]:
        """Send and wait; returns (seconds from write to response read, message)."""
        self._next += 1
        msg_id = self._next
        event = threading.Event()
        with self._lock:
            self._waiters[msg_id] = event
        frame = encode({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        sent = time.perf_counter()
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()
        if not event.wait(30):
            raise TimeoutError(f"{method} got no response")
        received, message = self.responses.pop(msg_id)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return received - sent, message["result"]

    def notify(self, method: str, params: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode({"jsonrpc": "2.0", "method": method, "params": params}))
        self.proc.stdin.flush()

    def initialize(self, folder: Path, options: Any = None) -> float:
        """Returns seconds from process start to the initialize response."""
        self.request("initialize", {"processId": os.getpid(), "capabilities": {},
                                    "workspaceFolders": [{"uri": folder.as_uri(), "name": "w"}],
                                    "initializationOptions": options})
        took = time.perf_counter() - self.started
        self.notify("initialized", {})
        return took

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


class InlineClient:
    """One thread, no hand-offs: write a request, read frames until its answer.

    Used for the latency figures: a reader thread's wake-ups (and the GIL it
    shares with the timing thread) would be measured along with the server.
    """

    def __init__(self, cmd: list[str]) -> None:
        env = {**os.environ, "CRUSH_GLOBAL_CONFIG": "/nonexistent"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._fd = self.proc.stdout.fileno()
        self._decoder = ContentLength(max_frame=1 << 40)
        self._ready: deque[bytes] = deque()
        self._next = 0
        self.notifications = 0

    def _frame(self) -> bytes:
        while not self._ready:
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                raise EOFError("server closed its output")
            for body in self._decoder.feed(chunk):
                assert not isinstance(body, FrameError), body
                self._ready.append(body)
        return self._ready.popleft()

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode(message))
        self.proc.stdin.flush()

    def request(self, method: str, params: Any) -> tuple[float, Any]:
        self._next += 1
        msg_id = self._next
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        sent = time.perf_counter()
        while True:
            body = self._frame()
            if body.startswith(NOTIFICATION_PREFIX):
                self.notifications += 1
                continue
            message = json.loads(body)
            if message.get("id") == msg_id and "method" not in message:
                took = time.perf_counter() - sent
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return took, message["result"]

    def initialize(self, folder: Path, options: Any = None) -> None:
        self.request("initialize", {"processId": os.getpid(), "capabilities": {},
                                    "workspaceFolders": [{"uri": folder.as_uri(), "name": "w"}],
                                    "initializationOptions": options})
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


def server_cmd() -> list[str]:
    return [sys.executable, "-m", "crush_ls"]


def bench_idle_status(folder: Path, n: int) -> list[float]:
    client = InlineClient(server_cmd())
    client.initialize(folder, {"model": {"provider": "scripted", "script": SCRIPT}})
    for _ in range(50):  # warm up
        client.request("agent/status", {})
    times = [client.request("agent/status", {})[0] for _ in range(n)]
    client.kill()
    return times


def bench_accept_under_load(folder: Path, prompts: int, streaming: int) -> tuple[list[float], int]:
    client = InlineClient(server_cmd())
    client.initialize(folder, {"model": {"provider": "scripted", "script": SCRIPT}, "streamIntervalMs": 16})
    streamers = [client.request("session/create", {})[1]["id"] for _ in range(streaming)]
    for session in streamers:
        client.request("agent/sendMessage", {"sessionId": session, "prompt": "stream please"})
    quick = [client.request("session/create", {})[1]["id"] for _ in range(50)]
    deadline = time.perf_counter() + 0.5  # let all 100 streams get going (reading what they send)
    while time.perf_counter() < deadline:
        client.request("agent/status", {})
    before = client.notifications
    times = []
    for i in range(prompts):
        took, result = client.request("agent/sendMessage", {"sessionId": quick[i % len(quick)], "prompt": "hi"})
        assert result["accepted"]
        times.append(took)
    streamed = client.notifications - before
    client.kill()
    return times, streamed


def bench_start(folder: Path, cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        client = Client(cmd)
        times.append(client.initialize(folder))
        client.close()
    return times


def bench_rss(folder: Path, sessions: int) -> tuple[float, float]:
    client = Client(server_cmd())
    client.initialize(folder, {"model": {"provider": "scripted", "script": SCRIPT}})
    client.request("agent/status", {})
    idle = client.rss_mb()
    for _ in range(sessions):
        session = client.request("session/create", {})[1]["id"]
        client.request("agent/sendMessage", {"sessionId": session, "prompt": "hi"})
    deadline = time.monotonic() + 60
    while client.completed < sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    used = client.rss_mb()
    client.close()
    return idle, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--streaming", type=int, default=100)
    parser.add_argument("--start-runs", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("idle", "load", "start", "rss"):
            (root / name).mkdir()
        idle = bench_idle_status(root / "idle", args.prompts)
        accept, streamed = bench_accept_under_load(root / "load", args.prompts, args.streaming)
        crush_start: list[float] = []
        bare_start: list[float] = []
        for _ in range(args.start_runs):  # interleaved, so drift on the machine hits both alike
            crush_start += bench_start(root / "start", server_cmd(), 1)
            bare_start += bench_start(root / "start", [sys.executable, str(HERE / "bare_pygls_server.py")], 1)
        rss_idle, rss_used = bench_rss(root / "rss", args.sessions)

    ratio = statistics.median(accept) / statistics.median(idle)
    start_ratio = statistics.median(crush_start) / statistics.median(bare_start)
    print(f"agent/status idle           n={len(idle)}  p50 {ms(pct(idle, .5))}  p99 {ms(pct(idle, .99))}")
    print(f"agent/sendMessage ack load  n={len(accept)}  p50 {ms(pct(accept, .5))}  p99 {ms(pct(accept, .99))}"
          f"  (while {args.streaming} sessions streamed {streamed} notifications)")
    print(f"ack p50 / idle p50          {ratio:.2f}  (target < 1.5)")
    print(f"ack p99 under load          {'OK' if pct(accept, .99) < 0.005 else 'OVER'} (target < 5 ms)")
    print(f"start -> initialize         crush-ls p50 {ms(statistics.median(crush_start))}"
          f"  bare pygls p50 {ms(statistics.median(bare_start))}  ratio {start_ratio:.2f} (target <= 1.10)")
    print(f"RSS                         idle {rss_idle:.1f} MB  after {args.sessions} sessions used {rss_used:.1f} MB")


if __name__ == "__main__":
    main()
