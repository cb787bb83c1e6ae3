"""What the durability promise costs a run (docs/protocol.md, "Durability").

A prompt's user message is committed before its `run_started`, and every
message before its `message_created`: a run waits for the disk a few times.
The ack does not (bench/accept_latency.py measures it under load). This
prints, with the echo model:
  1. one session, prompts one after another: ack, run_started and
     run_complete latency from the request (p50, p99);
  2. SESSIONS sessions x PROMPTS prompts sent at once: runs per second until
     the last run_complete.

Usage: python bench/durability.py [--runs 200] [--sessions 50] [--prompts 10]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from accept_latency import Client, ms, pct, server_cmd

ECHO = {"model": {"provider": "echo"}, "streamIntervalMs": 16}


class RunClock(Client):
    """Records when each run's run_started and run_complete arrive."""

    def __init__(self, cmd: list[str]) -> None:
        super().__init__(cmd)
        self.seen: dict[tuple[str, str], float] = {}
        self.done = threading.Condition()

    def on_notification(self, params: dict[str, Any], received: float) -> None:
        kind = params["type"]
        if kind in ("run_started", "run_complete"):
            with self.done:
                self.seen[(params["runId"], kind)] = received
                self.done.notify_all()

    def wait(self, run_ids: list[str], timeout: float = 120) -> float:
        deadline = time.perf_counter() + timeout
        with self.done:
            while not all((r, "run_complete") in self.seen for r in run_ids):
                if not self.done.wait(deadline - time.perf_counter()):
                    raise TimeoutError("runs did not complete")
        return max(self.seen[(r, "run_complete")] for r in run_ids)


def bench_sequential(folder: Path, runs: int) -> dict[str, list[float]]:
    client = RunClock(server_cmd())
    client.initialize(folder, ECHO)
    session = client.request("session/create", {})[1]["id"]
    times: dict[str, list[float]] = {"ack": [], "run_started": [], "run_complete": []}
    for i in range(runs):
        sent = time.perf_counter()
        took, result = client.request("agent/sendMessage", {"sessionId": session, "prompt": f"say {i}"})
        client.wait([result["runId"]])
        times["ack"].append(took)
        times["run_started"].append(client.seen[(result["runId"], "run_started")] - sent)
        times["run_complete"].append(client.seen[(result["runId"], "run_complete")] - sent)
    client.close()
    return times


def bench_throughput(folder: Path, sessions: int, prompts: int) -> float:
    client = RunClock(server_cmd())
    client.initialize(folder, ECHO)
    ids = [client.request("session/create", {})[1]["id"] for _ in range(sessions)]
    started = time.perf_counter()
    runs = [client.request("agent/sendMessage", {"sessionId": s, "prompt": f"say {n}"})[1]["runId"]
            for n in range(prompts) for s in ids]
    last = client.wait(runs)
    client.close()
    return len(runs) / (last - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "seq"
        folder.mkdir()
        times = bench_sequential(folder, args.runs)
        for name, values in times.items():
            print(f"{name:<13} n={len(values)}  p50 {ms(pct(values, 0.5))}  p99 {ms(pct(values, 0.99))}")
        folder = Path(tmp) / "many"
        folder.mkdir()
        rate = bench_throughput(folder, args.sessions, args.prompts)
        print(f"throughput    {args.sessions} sessions x {args.prompts} prompts: {rate:.0f} runs/s")


if __name__ == "__main__":
    main()
