"""`crush-ls acp` beside the LSP-framed server, in one run: first-chunk latency and updates/s.

For each server, on its own temp folder with the scripted model:
  - 20 sessions stream a long answer (8-character chunks every 2 ms; both servers
    join deltas per `streamIntervalMs`, 16 ms by default);
  - meanwhile a 21st session is sent PROMPTS short prompts one after the other,
    each timed from writing `session/prompt` (ACP) / `agent/sendMessage` (LSP)
    to reading its first `agent_message_chunk` / `text_delta`;
  - updates/s: the streaming sessions' text updates read per second over that time.
One asyncio client per server, the same code for both apart from the framing.
The servers take turns for ROUNDS rounds (a busy machine drifts); each figure is
the median over the rounds.
Usage: python bench/acp_stream.py [--prompts 50] [--streams 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LONG_TEXT = "streaming tokens " * 20000
SCRIPT = {"responses": [
    {"when": "stream", "events": [{"text": LONG_TEXT, "chunkSize": 8, "delayMs": 2}]},
    {"when": "quick", "events": [{"text": "a short answer"}]},
]}


class Peer:
    """A JSON-RPC peer over a child's stdio; `framing` is "ndjson" or "lsp"."""

    def __init__(self, proc: asyncio.subprocess.Process, framing: str, is_chunk: Any) -> None:
        self.proc = proc
        self.framing = framing
        self.is_chunk = is_chunk  # (message) -> session id of a text chunk, or None
        self._next = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._chunk_waiters: dict[str, asyncio.Future[float]] = {}
        self.chunks: dict[str, int] = {}
        self.on_notification: Any = None  # (message) -> None, for other notifications
        self.reader = asyncio.ensure_future(self._read())

    def write(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        frame = body + b"\n" if self.framing == "ndjson" else b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        self.proc.stdin.write(frame)

    def request(self, method: str, params: Any) -> asyncio.Future[Any]:
        self._next += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = future
        self.write({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        return future

    def notify(self, method: str, params: Any) -> None:
        self.write({"jsonrpc": "2.0", "method": method, "params": params})

    def first_chunk(self, session_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._chunk_waiters[session_id] = future
        return future

    async def _frames(self) -> Any:
        stdout = self.proc.stdout
        while True:
            if self.framing == "ndjson":
                line = await stdout.readline()
                if not line:
                    return
                yield line
                continue
            header = await stdout.readuntil(b"\r\n\r\n")
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            yield await stdout.readexactly(length)

    async def _read(self) -> None:
        try:
            async for frame in self._frames():
                message = json.loads(frame)
                if "method" in message:
                    if "id" in message:  # a request to us (permissions): allow
                        self.write({"jsonrpc": "2.0", "id": message["id"], "result": {"decision": "allow"}})
                        continue
                    session = self.is_chunk(message)
                    if session is not None:
                        self.chunks[session] = self.chunks.get(session, 0) + 1
                        waiter = self._chunk_waiters.pop(session, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(time.perf_counter())
                    elif self.on_notification is not None:
                        self.on_notification(message)
                    continue
                future = self._waiting.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message.get("result", message.get("error")))
        except (asyncio.IncompleteReadError, ConnectionError):
            return


def acp_chunk(message: dict[str, Any]) -> str | None:
    params = message.get("params") or {}
    if message["method"] == "session/update" and params.get("update", {}).get("sessionUpdate") == "agent_message_chunk":
        return params["sessionId"]
    return None


def lsp_chunk(message: dict[str, Any]) -> str | None:
    params = message.get("params") or {}
    if message["method"] == "agent/notification" and params.get("type") == "text_delta":
        return params["sessionId"]
    return None


async def spawn(args: list[str], cwd: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "CRUSH_GLOBAL_CONFIG": "/nonexistent"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crush_ls", *args, cwd=cwd, env=env, limit=1 << 24,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)


class AcpServer:
    name = "crush-ls acp (NDJSON)"

    async def start(self, folder: Path, script: Path) -> None:
        self.peer = Peer(await spawn(["acp", "--script", str(script), "--yolo"], folder), "ndjson", acp_chunk)
        self.folder = folder
        await self.peer.request("initialize", {"protocolVersion": 1, "clientCapabilities": {}})

    async def new_session(self) -> str:
        return (await self.peer.request("session/new", {"cwd": str(self.folder), "mcpServers": []}))["sessionId"]

    def prompt(self, session_id: str, text: str) -> asyncio.Future[Any]:
        return self.peer.request("session/prompt", {"sessionId": session_id,
                                                    "prompt": [{"type": "text", "text": text}]})

    async def finish(self, sessions: list[str]) -> None:
        for sid in sessions:
            self.peer.notify("session/cancel", {"sessionId": sid})
        self.peer.proc.stdin.close()
        await self.peer.proc.wait()


class LspServer:
    name = "crush-ls (LSP framing)"

    async def start(self, folder: Path, script: Path) -> None:
        self.peer = Peer(await spawn([], folder), "lsp", lsp_chunk)
        self.uri = folder.as_uri()
        options = {"model": {"provider": "scripted", "scriptPath": str(script)}, "permissions": {"mode": "allow"}}
        await self.peer.request("initialize", {"processId": os.getpid(), "capabilities": {},
                                               "workspaceFolders": [{"uri": self.uri, "name": "w"}],
                                               "initializationOptions": options})
        self.peer.notify("initialized", {})
        self._ends: dict[str, asyncio.Future[Any]] = {}
        self.peer.on_notification = self._ended

    def _ended(self, message: dict[str, Any]) -> None:
        params = message.get("params") or {}
        if params.get("type") == "run_complete":
            end = self._ends.pop(params["sessionId"], None)
            if end is not None and not end.done():
                end.set_result(params)

    async def new_session(self) -> str:
        return (await self.peer.request("session/create", {"workspace": self.uri}))["id"]

    def prompt(self, session_id: str, text: str) -> asyncio.Future[Any]:
        """Resolves at the run's `run_complete`, as an ACP prompt's answer does."""
        end = self._ends[session_id] = asyncio.get_running_loop().create_future()
        self.peer.request("agent/sendMessage", {"workspace": self.uri, "sessionId": session_id, "prompt": text})
        return end

    async def finish(self, sessions: list[str]) -> None:
        for sid in sessions:
            await self.peer.request("agent/cancel", {"workspace": self.uri, "sessionId": sid})
        await self.peer.request("shutdown", None)
        self.peer.notify("exit", None)
        await self.peer.proc.wait()


async def measure(server: Any, prompts: int, streams: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="acp-bench-") as tmp:
        folder = Path(tmp) / "ws"
        folder.mkdir()
        script = Path(tmp) / "script.json"
        script.write_text(json.dumps(SCRIPT))
        await server.start(folder, script)
        streaming = [await server.new_session() for _ in range(streams)]
        probe = await server.new_session()
        firsts = [server.peer.first_chunk(sid) for sid in streaming]
        for sid in streaming:
            server.prompt(sid, "stream")
        await asyncio.wait_for(asyncio.gather(*firsts), 60)  # every session is streaming
        before, started = sum(server.peer.chunks[s] for s in streaming), time.perf_counter()
        latencies = []
        for _ in range(prompts):
            first = server.peer.first_chunk(probe)
            sent = time.perf_counter()
            answered = server.prompt(probe, "quick")
            latencies.append((await asyncio.wait_for(first, 30)) - sent)
            await asyncio.wait_for(answered, 30)
        elapsed = time.perf_counter() - started
        rate = (sum(server.peer.chunks[s] for s in streaming) - before) / elapsed
        await server.finish(streaming + [probe])
    latencies.sort()
    return {
        "first_chunk_p50_ms": statistics.median(latencies) * 1000,
        "first_chunk_p90_ms": latencies[int(0.9 * (len(latencies) - 1))] * 1000,
        "first_chunk_max_ms": latencies[-1] * 1000,
        "updates_per_s": rate,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.streams} sessions streaming, {args.prompts} prompts timed in another session, "
          f"median of {args.rounds} alternating rounds")
    rounds: dict[str, list[dict[str, float]]] = {AcpServer.name: [], LspServer.name: []}
    for _ in range(args.rounds):
        for server in (AcpServer(), LspServer()):
            rounds[server.name].append(await measure(server, args.prompts, args.streams))
    print(f"{'server':<24} {'first chunk p50':>16} {'p90':>9} {'max':>9} {'updates/s':>10}")
    for name, results in rounds.items():
        f = {key: statistics.median(r[key] for r in results) for key in results[0]}
        print(f"{name:<24} {f['first_chunk_p50_ms']:>13.1f} ms {f['first_chunk_p90_ms']:>6.1f} ms "
              f"{f['first_chunk_max_ms']:>6.1f} ms {f['updates_per_s']:>10.0f}")


if __name__ == "__main__":
    asyncio.run(main())
