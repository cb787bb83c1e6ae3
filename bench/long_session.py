"""What a long session and a workspace with many sessions cost crush-ls (issue 14, target 4).

The stored data is made with the server's own `Store` (the same rows a real
session leaves: prompts, assistant messages with tool calls and finishes,
tool results of a few KB); every figure but the provider's own is then taken
against a spawned `python -m crush_ls`, through the protocol:

  1. work per model step in a session of MESSAGES stored messages: a prompt
     whose run takes STEPS model steps (each a `view` tool call of a small
     file, then an answer) with the scripted model, which answers at once.
     Printed: the server's CPU time (user + system, every thread, from
     /proc) per step and the run's wall time per step, next to the same run
     in an empty session; and the CPU time of a prompt answered in one
     step (what a prompt costs, its history read once). This is everything
     the server does for a step (history, the ModelCall, storing and
     committing the messages, notifications, the tool); the model itself
     costs nothing here.
     Also, in this process: what a real provider adds on top each step,
     turning the whole history into its request (`openai_messages`).
  2. `session/messages` of that session: response time (p50, p99).
  3. opening a workspace with SESSIONS sessions: from the
     `workspace/didChangeWorkspaceFolders` that adds it to a running server
     to the answer of the `session/list` of it behind that notification,
     next to an empty folder; and a fresh server's `initialized` (when its
     first folder opens) to its `session/list` answer.
  4. memory against sessions seen: in a workspace of TOUCH sessions, RSS
     after a prompt and a `session/messages` in 1,000 and then in all of
     them (each new session touched should add nothing).

Targets: per step < 2 ms, session/messages < 50 ms, open < 100 ms, RSS flat.
Usage: python bench/long_session.py [--messages 2000] [--sessions 1000] [--touch 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from accept_latency import Client, ms, pct, server_cmd
from durability import RunClock

from crush_ls.providers.openai_chat import openai_messages
from crush_ls.storage import Store
from crush_ls.storage.schema import DB_NAME
from crush_ls.storage.store import prepare_data_directory

STEPS = 40  # MAX_STEPS is 50
LONG_PROMPT = "long run"
RESULT = "".join(f"{n:>6}\tline {n} of a file the agent viewed, with some code in it\n" for n in range(30))


def step_script(steps: int) -> dict[str, Any]:
    """`steps` model calls: a `view` of notes.txt at each but the last, which answers."""
    view = {"toolCall": {"name": "view", "input": {"file_path": "notes.txt"}}}
    responses: list[dict[str, Any]] = [{"when": LONG_PROMPT, "step": n, "events": [view]} for n in range(steps - 1)]
    responses.append({"when": LONG_PROMPT, "events": [{"text": "done", "usage": {"inputTokens": 10,
                                                                                   "outputTokens": 2}}]})
    responses.append({"events": [{"text": "ok"}]})
    return {"responses": responses}


def options(steps: int = STEPS) -> dict[str, Any]:
    return {"model": {"provider": "scripted", "script": step_script(steps)}, "streamIntervalMs": 16}


# ---------------------------------------------------------------------- stored data
def round_of(store: Store, session_id: str, n: int) -> None:
    """Four messages, as one prompt with one tool call leaves them."""
    finish = {"type": "finish", "reason": "end_turn", "time": "2026-01-01T00:00:00.000Z"}
    store.create_message(session_id, "user", [{"type": "text", "text": f"prompt {n}: look at the file and fix it"}])
    call = {"type": "tool_call", "id": f"call_{n}", "name": "view", "input": {"file_path": f"src/mod{n}.py"},
            "status": "completed"}
    store.create_message(session_id, "assistant", [{"type": "text", "text": f"Looking at mod{n}."}, call,
                                                   dict(finish, reason="tool_use")], model="m", provider="p")
    store.create_message(session_id, "tool", [{"type": "tool_result", "toolCallId": f"call_{n}", "name": "view",
                                               "content": RESULT, "isError": False}])
    store.create_message(session_id, "assistant", [{"type": "text", "text": f"Fixed mod{n}. " * 20}, finish],
                         model="m", provider="p")


def seed(folder: Path, sessions: int, rounds: int) -> list[str]:
    """A workspace whose store holds `sessions` sessions of `rounds` * 4 messages each."""
    async def fill() -> list[str]:
        store = Store.open(prepare_data_directory(folder, ".crush") / DB_NAME)
        ids = []
        for s in range(sessions):
            session = store.new_session(f"session {s}")
            ids.append(session.id)
            for n in range(rounds):
                round_of(store, session.id, n)
            if s % 100 == 99:
                await store.flush()
        await store.close()
        return ids

    (folder / "notes.txt").write_text("a small file\n")
    return asyncio.run(fill())


# ---------------------------------------------------------------------- figures
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_steps(folder: Path, session_id: str | None, runs: int) -> tuple[float, float, float]:
    """(server CPU seconds per step of STEPS-step runs, median wall seconds per step, server CPU
    seconds per one-step prompt), over `runs` runs of each kind."""
    client = RunClock(server_cmd())
    client.initialize(folder, options())
    session = session_id or client.request("session/create", {})[1]["id"]
    client.request("agent/sendMessage", {"sessionId": session, "prompt": "warm up"})  # tools, prompt, caches
    cpu = {LONG_PROMPT: 0.0, "hi": 0.0}
    wall = []
    for _ in range(runs):
        for prompt in cpu:
            client.request("agent/status", {})
            before = cpu_seconds(client.proc.pid)
            run_id = client.request("agent/sendMessage", {"sessionId": session, "prompt": prompt})[1]["runId"]
            client.wait([run_id])
            cpu[prompt] += cpu_seconds(client.proc.pid) - before  # clock ticks (10 ms): summed, not per run
            if prompt == LONG_PROMPT:
                wall.append((client.seen[(run_id, "run_complete")] - client.seen[(run_id, "run_started")]) / STEPS)
    client.close()
    return cpu[LONG_PROMPT] / (runs * STEPS), pct(wall, 0.5), cpu["hi"] / runs


def bench_messages(folder: Path, session_id: str, n: int) -> tuple[list[float], int, float]:
    """(response times, messages in the answer, mean server CPU seconds per request)."""
    client = Client(server_cmd())
    client.initialize(folder, options())
    client.request("session/messages", {"sessionId": session_id})
    times, count = [], 0
    cpu = cpu_seconds(client.proc.pid)
    for _ in range(n):
        took, result = client.request("session/messages", {"sessionId": session_id})
        times.append(took)
        count = len(result["messages"])
    cpu = cpu_seconds(client.proc.pid) - cpu
    client.close()
    return times, count, cpu / n


def spawn(folder: Path) -> tuple[Client, float, float]:
    """A server with `folder` open; returns it, and from `initialized` to its session/list answered
    the seconds and the server's CPU seconds."""
    client = Client(server_cmd())
    client.request("initialize", {"processId": os.getpid(), "capabilities": {},
                                  "workspaceFolders": [{"uri": folder.as_uri(), "name": "w"}],
                                  "initializationOptions": options()})
    started, cpu = time.perf_counter(), cpu_seconds(client.proc.pid)
    client.notify("initialized", {})
    client.request("session/list", {})
    return client, time.perf_counter() - started, cpu_seconds(client.proc.pid) - cpu


def bench_open(folder: Path, runs: int) -> tuple[float, float, float, float, int]:
    """For a fresh server with `folder` (initialized -> session/list answered) and for `folder`
    added to a running server (-> its session/list answered): the median seconds and the mean
    server CPU seconds over `runs` servers each; and the sessions listed."""
    first, first_cpu, added, added_cpu, listed = [], 0.0, [], 0.0, 0
    warm = folder.parent / "warm"
    warm.mkdir(exist_ok=True)
    for _ in range(runs):
        client, took, cpu = spawn(folder)
        first.append(took)
        first_cpu += cpu
        client.close()
        client, _took, _cpu = spawn(warm)
        started, cpu = time.perf_counter(), cpu_seconds(client.proc.pid)
        client.notify("workspace/didChangeWorkspaceFolders",
                      {"event": {"added": [{"uri": folder.as_uri(), "name": "timed"}], "removed": []}})
        listed = len(client.request("session/list", {"workspace": folder.as_uri()})[1]["sessions"])
        added.append(time.perf_counter() - started)
        added_cpu += cpu_seconds(client.proc.pid) - cpu
        client.close()
    return pct(first, .5), first_cpu / runs, pct(added, .5), added_cpu / runs, listed


def bench_memory(folder: Path, ids: list[str], marks: list[int]) -> list[tuple[int, float]]:
    client = RunClock(server_cmd())
    client.initialize(folder, options())
    client.request("agent/status", {})
    rss = [(0, client.rss_mb())]
    done = 0
    for mark in marks:
        for session in ids[done:mark]:
            run_id = client.request("agent/sendMessage", {"sessionId": session, "prompt": "hi"})[1]["runId"]
            client.wait([run_id])
            client.request("session/messages", {"sessionId": session})
        done = mark
        rss.append((mark, client.rss_mb()))
    client.close()
    return rss


def provider_history(folder: Path) -> tuple[float, int]:
    """Seconds a real provider (OpenAI chat) takes to turn the stored history into its request."""
    async def history() -> list[dict[str, Any]]:
        store = Store.open(folder / ".crush" / DB_NAME)
        session = next(iter(store.sessions))
        messages = [m.for_model() for m in await store.list_messages(session)]
        await store.close()
        return messages

    messages = asyncio.run(history())
    times = []
    for _ in range(20):
        started = time.perf_counter()
        openai_messages("system", messages)
        times.append(time.perf_counter() - started)
    return pct(times, 0.5), len(messages)


def report_steps(root: Path, long_id: str, messages: int, runs: int) -> None:
    long_cpu, long_wall, long_prompt = bench_steps(root / "long", long_id, runs)
    empty_cpu, empty_wall, empty_prompt = bench_steps(root / "empty", None, runs)
    convert, converted = provider_history(root / "long")
    print(f"per model step, {messages} stored   server CPU {ms(long_cpu)}  wall {ms(long_wall)}"
          f"  (empty session: CPU {ms(empty_cpu)}, wall {ms(empty_wall)}; {STEPS} steps a run; target < 2 ms)")
    print(f"  a one-step prompt               server CPU {ms(long_prompt)}  (empty session {ms(empty_prompt)})")
    print(f"  + a real provider's request     openai_messages of {converted} messages {ms(convert)} per step")


def report_messages(root: Path, long_id: str) -> None:
    times, count, cpu = bench_messages(root / "long", long_id, 20)
    print(f"session/messages ({count} messages)  p50 {ms(pct(times, .5))}  p99 {ms(pct(times, .99))}"
          f"  server CPU {ms(cpu)}  (target < 50 ms)")


def report_open(root: Path, runs: int) -> None:
    first, first_cpu, added, added_cpu, listed = bench_open(root / "many", runs)
    first_empty, first_empty_cpu, added_empty, added_empty_cpu, _ = bench_open(root / "none", runs)
    print(f"open a workspace, {listed} sessions  folder added -> its session/list {ms(added)}, server CPU"
          f" {ms(added_cpu)}  (empty folder {ms(added_empty)}, CPU {ms(added_empty_cpu)}; target < 100 ms)")
    print(f"  a fresh server                  initialized -> session/list {ms(first)}, server CPU {ms(first_cpu)}"
          f"  (empty folder {ms(first_empty)}, CPU {ms(first_empty_cpu)})")


def report_memory(root: Path, touch_ids: list[str]) -> None:
    (_, base), *marks = bench_memory(root / "touch", touch_ids, [min(1000, len(touch_ids)), len(touch_ids)])
    growth = "  ".join(f"{n} sessions seen {mb:.1f} MB" for n, mb in marks)
    (n1, mb1), (n2, mb2) = marks[0], marks[-1]
    per = (mb2 - mb1) * 1024 / (n2 - n1) if n2 > n1 else 0.0
    print(f"RSS, {len(touch_ids)} sessions stored       idle {base:.1f} MB  {growth}"
          f"  ({per:.2f} KB per further session)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--touch", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", default="messages,steps,open,memory", help="the figures to take, comma-separated")
    args = parser.parse_args()
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("long", "empty", "many", "none", "touch"):
            (root / name).mkdir()
        (long_id,) = seed(root / "long", 1, args.messages // 4)
        if "messages" in only:  # before the runs add to the session
            report_messages(root, long_id)
        if "steps" in only:
            seed(root / "empty", 0, 0)
            report_steps(root, long_id, args.messages, args.runs)
        if "open" in only:
            seed(root / "many", args.sessions, 2)
            seed(root / "none", 0, 0)
            report_open(root, args.runs)
        if "memory" in only:
            report_memory(root, seed(root / "touch", args.touch, 1))
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall times stretch with it, CPU times"
          " much less)")


if __name__ == "__main__":
    main()
