"""Checks shared by the run tests (cancel, queue, lifecycle, turn).

The contract's run invariant: exactly one `run_complete` per accepted run,
and it is the last notification carrying that `runId`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


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
