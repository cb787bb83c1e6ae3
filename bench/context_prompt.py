"""What editor context costs a prompt (`agent/sendMessage.context`, PROTOCOL "Editor context").

A raw stdio client (bench/accept_latency.py's) measures, with the echo model:
  1. `agent/sendMessage` answer latency without context and with 32 file items (p50, p99): the items
     are checked when the prompt arrives (their files named), not read;
  2. from the answer to `run_started` (a new session each prompt), without and with the 32 items:
     they are read when the run starts (32 files of 4 KB from disk here; an open document is read
     from the mirror), stored with the prompt, which is committed before `run_started`;
  3. the same with 32 items of 32 KB each (cut to the 128,000-character total).
Usage: python bench/context_prompt.py [--prompts 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept_latency import Client  # the bench's own raw client


class Timed(Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started_at: dict[str, float] = {}
        self.done: dict[str, threading.Event] = {}

    def on_notification(self, params: dict[str, Any], received: float) -> None:
        run = params.get("runId", "")
        if params["type"] == "run_started":
            self.started_at[run] = received
        elif params["type"] == "run_complete" and run in self.done:
            self.done[run].set()


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def measure(client: Timed, folder: Path, context: list[dict[str, Any]], prompts: int,
            tag: str) -> tuple[list[float], list[float]]:
    answers, to_start = [], []
    for n in range(prompts):
        run = f"{tag}-{n}"
        # A session per prompt: a run reads its session's history, which would grow with the bench.
        session = client.request("session/create", {"workspace": folder.as_uri()})[1]["id"]
        client.done[run] = threading.Event()
        params = {"workspace": folder.as_uri(), "sessionId": session, "prompt": "hi", "runId": run}
        if context:
            params["context"] = context
        took, _ = client.request("agent/sendMessage", params)
        answered = time.perf_counter()
        if not client.done[run].wait(30):
            raise TimeoutError(run)
        answers.append(took * 1000)
        to_start.append((client.started_at[run] - answered) * 1000)
    return answers, to_start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = [folder / f"small{n}.py" for n in range(32)]
        large = [folder / f"large{n}.py" for n in range(32)]
        for path in small:
            path.write_text("x = 1  # a line of code\n" * 170)  # about 4 KB
        for path in large:
            path.write_text("x = 1  # a line of code\n" * 1360)  # about 32 KB
        client = Timed([sys.executable, "-m", "crush_ls"], cwd=folder)
        try:
            client.initialize(folder, {"model": {"provider": "echo"}})
            rows = []
            for tag, paths in (("none", []), ("32x4KB", small), ("32x32KB", large)):
                context = [{"uri": p.as_uri(), "kind": "file"} for p in paths]
                answers, to_start = measure(client, folder, context, args.prompts, tag)
                rows.append((tag, answers, to_start))
        finally:
            client.close()
    print(f"{'context':>10} {'answer p50':>11} {'answer p99':>11} {'to run_started p50':>19} {'p99':>8}  (ms, "
          f"{args.prompts} prompts each)")
    for tag, answers, to_start in rows:
        print(f"{tag:>10} {statistics.median(answers):11.2f} {percentile(answers, 0.99):11.2f} "
              f"{statistics.median(to_start):19.2f} {percentile(to_start, 0.99):8.2f}")


if __name__ == "__main__":
    main()
