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
     in an empty session. This is everything the server does for a step
     (history, the ModelCall, storing and committing the messages,
     notifications, the tool); the model itself costs nothing here.
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


def bench_steps(folder: Path, session_id: str | None, runs: int) -> tuple[float, float]:
    """(server CPU seconds per step over all runs, median wall seconds per step)."""
    client = RunClock(server_cmd())
    client.initialize(folder, options())
    session = session_id or client.request("session/create", {})[1]["id"]
    client.request("agent/sendMessage", {"sessionId": session, "prompt": "warm up"})  # tools, prompt, caches
    cpu, wall = 0.0, []
    for _ in range(runs):
        client.request("agent/status", {})
        before = cpu_seconds(client.proc.pid)
        run_id = client.request("agent/sendMessage", {"sessionId": session, "prompt": LONG_PROMPT})[1]["runId"]
        client.wait([run_id])
        cpu += cpu_seconds(client.proc.pid) - before  # clock ticks (10 ms): summed, not per run
        wall.append((client.seen[(run_id, "run_complete")] - client.seen[(run_id, "run_started")]) / STEPS)
    client.close()
    return cpu / (runs * STEPS), pct(wall, 0.5)


def bench_messages(folder: Path, session_id: str, n: int) -> tuple[list[float], int]:
    client = Client(server_cmd())
    client.initialize(folder, options())
    client.request("session/messages", {"sessionId": session_id})
    times, count = [], 0
    for _ in range(n):
        took, result = client.request("session/messages", {"sessionId": session_id})
        times.append(took)
        count = len(result["messages"])
    client.close()
    return times, count


def spawn(folder: Path) -> tuple[Client, float]:
    """A server with `folder` open; returns it and initialized -> its session/list answered."""
    client = Client(server_cmd())
    client.request("initialize", {"processId": os.getpid(), "capabilities": {},
                                  "workspaceFolders": [{"uri": folder.as_uri(), "name": "w"}],
                                  "initializationOptions": options()})
    started = time.perf_counter()
    client.notify("initialized", {})
    client.request("session/list", {})
    return client, time.perf_counter() - started


def bench_open(folder: Path, runs: int) -> tuple[float, float, int]:
    """(initialized -> session/list of a fresh server with `folder`, `folder` added to a running
    server -> its session/list answered, sessions listed): medians over `runs` servers each."""
    first, added, listed = [], [], 0
    warm = folder.parent / "warm"
    warm.mkdir(exist_ok=True)
    for _ in range(runs):
        client, took = spawn(folder)
        first.append(took)
        client.close()
        client, _took = spawn(warm)
        started = time.perf_counter()
        client.notify("workspace/didChangeWorkspaceFolders",
                      {"event": {"added": [{"uri": folder.as_uri(), "name": "timed"}], "removed": []}})
        listed = len(client.request("session/list", {"workspace": folder.as_uri()})[1]["sessions"])
        added.append(time.perf_counter() - started)
        client.close()
    return pct(first, .5), pct(added, .5), listed


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--touch", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("long", "empty", "many", "none", "touch"):
            (root / name).mkdir()
        (long_id,) = seed(root / "long", 1, args.messages // 4)
        seed(root / "empty", 0, 0)
        seed(root / "many", args.sessions, 2)
        seed(root / "none", 0, 0)
        touch_ids = seed(root / "touch", args.touch, 1)

        messages, count = bench_messages(root / "long", long_id, 20)  # before the runs add to it
        convert, converted = provider_history(root / "long")
        long_cpu, long_wall = bench_steps(root / "long", long_id, args.runs)
        empty_cpu, empty_wall = bench_steps(root / "empty", None, args.runs)
        first, added, listed = bench_open(root / "many", args.runs)
        first_empty, added_empty, _ = bench_open(root / "none", args.runs)
        memory = bench_memory(root / "touch", touch_ids, [min(1000, args.touch), args.touch])

    print(f"per model step, {args.messages} stored   server CPU {ms(long_cpu)}  wall {ms(long_wall)}"
          f"  (empty session: CPU {ms(empty_cpu)}, wall {ms(empty_wall)}; {STEPS} steps a run; target < 2 ms)")
    print(f"  + a real provider's request     openai_messages of {converted} messages {ms(convert)} per step")
    print(f"session/messages ({count} messages)  p50 {ms(pct(messages, .5))}  p99 {ms(pct(messages, .99))}"
          f"  (target < 50 ms)")
    print(f"open a workspace, {listed} sessions  folder added -> its session/list {ms(added)}"
          f"  (empty folder {ms(added_empty)}; target < 100 ms)")
    print(f"  a fresh server                  initialized -> session/list {ms(first)}"
          f"  (empty folder {ms(first_empty)})")
    (_, base), *marks = memory
    growth = "  ".join(f"{n} sessions seen {mb:.1f} MB" for n, mb in marks)
    (n1, mb1), (n2, mb2) = marks[0], marks[-1]
    per = (mb2 - mb1) * 1024 / (n2 - n1) if n2 > n1 else 0.0
    print(f"RSS, {args.touch} sessions stored       idle {base:.1f} MB  {growth}  ({per:.2f} KB per further session)")


if __name__ == "__main__":
    main()
