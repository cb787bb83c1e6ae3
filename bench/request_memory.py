"""Memory held after many answered requests: RSS before and after N `session/messages` (and renames).

Each request is answered after awaiting storage. Nothing of an answered request
may stay behind (pygls kept every one, result and all, while crush-ls answered
them through generator handlers). Usage: python bench/request_memory.py [--requests 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from accept_latency import InlineClient, server_cmd


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--prompts", type=int, default=20, help="messages in the session read back")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        client = InlineClient(server_cmd())
        client.initialize(Path(tmp), {"model": {"provider": "echo"}})
        session = client.request("session/create", {})[1]["id"]
        for i in range(args.prompts):
            client.request("agent/sendMessage", {"sessionId": session, "prompt": f"prompt {i} " * 20})
        while len(client.request("session/messages", {"sessionId": session})[1]["messages"]) < 2 * args.prompts:
            time.sleep(0.05)  # the echo runs finish on their own; nothing to await across processes
        for _ in range(200):  # warm up: caches, allocator pools
            client.request("session/messages", {"sessionId": session})
        before = rss_mb(client.proc.pid)
        started = time.perf_counter()
        for _ in range(args.requests):
            client.request("session/messages", {"sessionId": session})
        took = time.perf_counter() - started
        after_messages = rss_mb(client.proc.pid)
        for i in range(args.requests // 10):
            client.request("session/rename", {"sessionId": session, "title": f"title {i}"})
        after_renames = rss_mb(client.proc.pid)
        client.kill()
    print(f"session/messages x{args.requests} ({2 * args.prompts} messages each)  RSS {before:.1f} MB -> "
          f"{after_messages:.1f} MB  (+{after_messages - before:.1f} MB, {took / args.requests * 1e3:.3f} ms each)")
    print(f"session/rename x{args.requests // 10}  RSS -> {after_renames:.1f} MB"
          f" (+{after_renames - after_messages:.1f} MB)")


if __name__ == "__main__":
    main()
