"""S1 raw: hand-written asyncio JSON-RPC server, LSP Content-Length framing, no framework.

The Python physical floor: asyncio pipe transports, json.loads/json.dumps, a dict
dispatch.  Speaks the subset of crush-ls's protocol the benchmark uses:
initialize / initialized / agent/status / session/create / agent/sendMessage
(answered at once, then N `agent/notification` text_delta + one run_complete) /
shutdown / exit.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from floor_common import STATUS, USAGE, accepted, script_chunks, session

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _WriteProtocol(asyncio.BaseProtocol):
    """Pipe protocol with flow control, so `drain()` waits when the pipe is full."""

    def __init__(self) -> None:
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.resume_writing()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None

    async def drain(self) -> None:
        if self._paused:
            if self._waiter is None:  # one waiter shared by every paused writer
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


class RawServer:
    def __init__(self, transport: asyncio.WriteTransport, proto: _WriteProtocol) -> None:
        self.transport = transport
        self.proto = proto
        self.seq = itertools.count(1)
        self.ids = itertools.count(1)
        self.text, self.chunks = script_chunks(None)
        self.tasks: set[asyncio.Task[None]] = set()
        self.shutdown = False

    # --- output -----------------------------------------------------------------
    def send(self, msg: dict) -> None:
        body = _dumps(msg).encode()
        self.transport.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def reply(self, msg_id, result) -> None:
        self.send({"jsonrpc": "2.0", "id": msg_id, "result": result})

    def notify(self, params: dict) -> None:
        params["seq"] = next(self.seq)
        self.send({"jsonrpc": "2.0", "method": "agent/notification", "params": params})

    # --- dispatch ---------------------------------------------------------------
    def handle(self, msg: dict) -> bool:
        """Handle one message; False ends the server."""
        method = msg.get("method")
        msg_id = msg.get("id")
        params = msg.get("params") or {}
        if method is None:  # a response to a request we never send
            return True
        if method == "agent/status":
            self.reply(msg_id, STATUS)
        elif method == "agent/sendMessage":
            self.send_message(msg_id, params)
        elif method == "session/create":
            self.reply(msg_id, session(f"s{next(self.ids)}"))
        elif method == "initialize":
            self.text, self.chunks = script_chunks(params.get("initializationOptions"))
            self.reply(
                msg_id,
                {
                    "capabilities": {"experimental": {"crush": {"version": 1}}},
                    "serverInfo": {"name": "floor-raw", "version": "0"},
                },
            )
        elif method == "shutdown":
            self.shutdown = True
            self.reply(msg_id, None)
        elif method == "exit":
            return False
        elif msg_id is not None:
            self.send(
                {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32601, "message": f"Method not found: {method}"}}
            )
        return True

    def send_message(self, msg_id, params: dict) -> None:
        sid = params.get("sessionId", "")
        rid = params.get("runId") or f"r{next(self.ids)}"
        # response first, then the run (the task only starts after this returns)
        self.reply(msg_id, accepted(rid, sid))
        task = asyncio.get_running_loop().create_task(self.run(params.get("workspace", ""), sid, rid))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, ws: str, sid: str, rid: str) -> None:
        mid = f"m{next(self.ids)}"
        base = {"workspace": ws, "sessionId": sid, "runId": rid, "messageId": mid}
        for chunk in self.chunks:
            self.notify({"type": "text_delta", **base, "text": chunk})
            await self.proto.drain()
            await asyncio.sleep(0)  # one event-loop turn per chunk, as a streaming provider gives
        self.notify({"type": "run_complete", **base, "text": self.text, "finishReason": "end_turn", "usage": USAGE})


async def main() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, proto = await loop.connect_write_pipe(_WriteProtocol, sys.stdout)
    server = RawServer(transport, proto)
    try:
        while True:
            try:
                header = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break  # EOF
            length = -1
            for line in header.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length < 0:
                print(f"raw_server: header without Content-Length: {header!r}", file=sys.stderr)
                continue
            msg = json.loads(await reader.readexactly(length))
            if not server.handle(msg):
                break
    finally:
        for task in list(server.tasks):
            task.cancel()
        transport.close()  # flushes what is buffered, then closes
        try:
            await asyncio.wait_for(asyncio.shield(proto.closed), 2)
        except TimeoutError:
            pass
    return 0 if server.shutdown else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
