"""Checks and drivers shared by the run tests (cancel, queue, lifecycle, turn, tools, safety).

The contract's run invariant: exactly one `run_complete` per accepted run,
and it is the last notification carrying that `runId`. The drivers script a
model's tool calls (`steps`, `one_call_per_prompt`) and run them to their end.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import AgentClient, scripted
from tests.processes import read_fifo


def assert_runs_end_once(notes: list[dict[str, Any]], run_ids: list[str] | None = None) -> None:
    """Every run in `notes` (or each of `run_ids`) has one run_complete, its last notification."""
    seen = run_ids or list(dict.fromkeys(n["runId"] for n in notes if n.get("runId")))
    for run_id in seen:
        types = [n["type"] for n in notes if n.get("runId") == run_id]
        assert Counter(types)["run_complete"] == 1, (run_id, types)
        assert types[-1] == "run_complete", (run_id, types)


def assert_seq_numbers(notes: list[dict[str, Any]]) -> None:
    assert [n["seq"] for n in notes] == list(range(1, len(notes) + 1))


def finish_reason(message: dict[str, Any]) -> str | None:
    return next((p["reason"] for p in message["parts"] if p["type"] == "finish"), None)


def text(message: dict[str, Any], kind: str = "text") -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == kind)


def roles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["role"] for m in messages]


async def barrier(client: Any) -> None:
    """A request round trip: every notification the server wrote before its answer has been recorded."""
    await client.call("agent/status", {"workspace": client.ws_uri})


async def stored(client: Any, session_id: str) -> list[dict[str, Any]]:
    """session/messages (pytest-lsp's client keeps window/showMessage in `.messages`, shadowing the helper)."""
    return (await client.call("session/messages", {"workspace": client.ws_uri, "sessionId": session_id}))["messages"]


SLEEPER = "sleep 30 & echo $$ $! > pids; sleep 30"


def steps(*calls: dict[str, Any], text: str = "done") -> dict[str, Any]:
    """A model that makes one tool call per step, then says `text`."""
    responses = [{"step": n, "events": [{"toolCall": call}]} for n, call in enumerate(calls)]
    return scripted(*responses, {"step": len(calls), "events": [{"text": text}]})


async def start_sleeper(start: Any, workspace: Path) -> tuple[AgentClient, str, str, list[int]]:
    """A run whose bash call is running; returns the client, session, run and the command's pids."""
    os.mkfifo(workspace / "pids")
    model = steps({"name": "bash", "input": {"command": SLEEPER}})
    client = await start({"model": model, "permissions": {"mode": "allow"}})
    session = await client.new_session()
    run_id = (await client.send(session, "sleep"))["runId"]
    pids = [int(p) for p in (await read_fifo(workspace / "pids")).split()]
    return client, session, run_id, pids


def one_call_per_prompt(calls: list[dict]) -> dict:
    """A model that, for the prompt `[i]`, makes call i and then says done."""
    responses = [{"when": f"[{i}]", "step": 0, "events": [{"toolCall": call}]} for i, call in enumerate(calls)]
    return scripted(*responses, {"events": [{"text": "done"}]})


async def run_each(client, count: int) -> list[dict]:
    """One run per call; the tool_result of each."""
    session = await client.new_session()
    results = []
    for i in range(count):
        run_id = (await client.send(session, f"[{i}]"))["runId"]
        await client.completed(run_id)
        results.append(next(n for n in client.of_run(run_id) if n["type"] == "tool_result"))
    return results


async def racing_runs(client, calls_per_run: int, runs: int) -> list[dict]:
    """`runs` runs of up to `calls_per_run` racing calls each (a denial ends a run early)."""
    session = await client.new_session()
    results = []
    for _ in range(runs):
        run_id = (await client.send(session, "race"))["runId"]
        await client.completed(run_id, timeout=30)
        results += [n for n in client.of_run(run_id) if n["type"] == "tool_result"]
    return results


async def run(client: AgentClient, session_id: str, prompt: str) -> tuple[str, dict[str, Any]]:
    """One run to its end (which must be its only run_complete); its runId and run_complete."""
    run_id = (await client.send(session_id, prompt))["runId"]
    done = await client.completed(run_id)
    assert_runs_end_once(client.notes, [run_id])
    return run_id, done
