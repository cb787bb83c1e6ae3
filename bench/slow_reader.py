"""A client that stops reading while many sessions stream: what piles up, and how late the next answer is.

SESSIONS runs burst their deltas (the scripted provider without delays) while
the client reads nothing; once they are all stored, the client asks
`agent/status` and reads until the answer. Printed: server RSS before and
after the stall, bytes the client had to read ahead of the answer, and the time
that took. Usage: python bench/slow_reader.py [--sessions 50] [--words 10000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from accept_latency import InlineClient, server_cmd
from request_memory import rss_mb


def finished(folder: Path) -> int:
    db = sqlite3.connect(folder / ".crush" / "crush-ls.db")
    try:
        rows = db.execute("SELECT parts FROM messages WHERE role = 'assistant'").fetchall()
    finally:
        db.close()
    return sum('"type": "finish"' in parts for (parts,) in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--words", type=int, default=10_000, help="4-character deltas per run")
    args = parser.parse_args()
    script = {"responses": [{"events": [{"text": "tok " * args.words, "chunkSize": 4}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client = InlineClient(server_cmd())
        client.initialize(folder, {"model": {"provider": "scripted", "script": script}, "streamIntervalMs": 0})
        sessions = [client.request("session/create", {})[1]["id"] for _ in range(args.sessions)]
        before = rss_mb(client.proc.pid)
        for i, session in enumerate(sessions):  # sent, not awaited: the client reads nothing from here on
            client.send({"jsonrpc": "2.0", "id": f"send-{i}", "method": "agent/sendMessage",
                         "params": {"sessionId": session, "prompt": "go"}})
        started = time.perf_counter()
        while finished(folder) < args.sessions:
            time.sleep(0.05)
        stalled = time.perf_counter() - started
        after = rss_mb(client.proc.pid)
        client.send({"jsonrpc": "2.0", "id": "status", "method": "agent/status", "params": {}})
        asked = time.perf_counter()
        ahead = 0
        while True:
            body = client._frame()
            if json.loads(body).get("id") == "status":
                break
            ahead += len(body)
        waited = time.perf_counter() - asked
        client.kill()
    print(f"{args.sessions} sessions x {args.words} deltas, client not reading: runs stored in {stalled:.1f} s; "
          f"RSS {before:.1f} -> {after:.1f} MB")
    print(f"next answer: {ahead / 1e6:.2f} MB read ahead of it, {waited * 1e3:.0f} ms after asking")


if __name__ == "__main__":
    main()
