"""The coordinator and RunEvents without a transport: a fake turn loop gated by events.

`FakeTurns.execute` stands in for the turn loop: it records that a run
started, ends at once when the run was cancelled before it became active
(as `Turn.play` does), and otherwise waits until the test opens its gate or
cancels it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crush_ls.agent.coordinator import Coordinator, Run, RunState
from crush_ls.agent.events import RunEvents


class FakeTurns:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.started: list[str] = []
        self.outcome: dict[str, str] = {}  # run id -> finished | canceled | canceled_on_entry
        self.unstarted: list[str] = []  # runs dropped without starting
        self.gates: dict[str, asyncio.Event] = {}
        self.started_event = asyncio.Event()
        self.coordinator = Coordinator(self.execute, self.complete_unstarted)

    def gate(self, run_id: str) -> asyncio.Event:
        return self.gates.setdefault(run_id, asyncio.Event())

    async def execute(self, run: Run) -> None:
        self.started.append(run.id)
        self.started_event.set()
        if run.canceled:
            self.outcome[run.id] = "canceled_on_entry"
            return
        try:
            await self.gate(run.id).wait()
            self.outcome[run.id] = "finished"
        except asyncio.CancelledError:
            self.outcome[run.id] = "canceled"  # swallowed, as Agent.execute does

    def complete_unstarted(self, run: Run) -> None:
        self.unstarted.append(run.id)

    def run(self, run_id: str, session: str = "s1", mode: str = "queue") -> Run:
        events = RunEvents(self.sent.append, "file:///w", session, run_id, 0)
        return Run(id=run_id, session_id=session, prompt=f"prompt {run_id}", attachments=[], events=events, mode=mode)

    def accept(self, run_id: str, session: str = "s1", mode: str = "queue") -> tuple[bool, int]:
        return self.coordinator.accept(self.run(run_id, session, mode))

    async def until_started(self, run_id: str) -> None:
        while run_id not in self.started:
            self.started_event.clear()
            await asyncio.wait_for(self.started_event.wait(), 2)

    async def idle(self, session: str = "s1") -> None:
        worker = self.coordinator.line(session).worker
        if worker is not None:
            await asyncio.wait_for(asyncio.shield(worker), 2)


@pytest.fixture
def turns() -> FakeTurns:
    return FakeTurns()


async def test_accept_positions_and_run_queued(turns):
    assert turns.accept("a") == (False, 0)
    assert turns.accept("b") == (True, 1)
    assert turns.accept("c") == (True, 2)
    assert turns.accept("other", session="s2") == (False, 0)  # lines are per session
    await asyncio.sleep(0)  # run_queued goes out after the request's response (call_soon)
    queued = [(n["runId"], n["position"]) for n in turns.sent if n["type"] == "run_queued"]
    assert queued == [("b", 1), ("c", 2)]
    await turns.until_started("a")
    assert [r.id for r in turns.coordinator.queued("s1")] == ["b", "c"]
    assert turns.coordinator.active_run("s1").id == "a"
    assert turns.coordinator.live_run_ids == {"a", "b", "c", "other"}
    for run_id in ("a", "b", "c", "other"):
        turns.gate(run_id).set()
    await turns.idle("s1")
    await turns.idle("s2")
    assert turns.started[:1] == ["a"] and [r for r in turns.started if r != "other"] == ["a", "b", "c"]
    assert turns.coordinator.live_run_ids == set()
    assert not turns.coordinator.is_busy("s1")


async def test_cancel_ends_active_and_runs_accepted_before_not_after(turns):
    turns.accept("a")
    turns.accept("b")
    turns.accept("c")
    await turns.until_started("a")
    assert turns.coordinator.cancel("s1") == 3
    assert turns.unstarted == ["b", "c"]  # queued behind a: dropped, nothing started
    assert turns.accept("d") == (True, 1)  # a is still finishing its cancel
    turns.gate("d").set()
    await turns.idle()
    assert turns.outcome == {"a": "canceled", "d": "finished"}
    assert turns.started == ["a", "d"]


async def test_idle_cancel_is_a_noop(turns):
    assert turns.coordinator.cancel("s1") == 0
    assert turns.coordinator.cancel("never-seen") == 0
    turns.accept("a")
    turns.gate("a").set()
    await turns.idle()
    assert turns.outcome == {"a": "finished"}


async def test_cancel_before_the_head_starts_marks_it_canceled_on_entry(turns):
    turns.accept("a")
    turns.accept("b")
    # The worker has not run yet: a is accepted, not waiting behind another run.
    assert turns.coordinator.cancel("s1") == 2
    await turns.idle()
    assert turns.outcome == {"a": "canceled_on_entry"}  # it starts, stores its prompt, ends canceled
    assert turns.unstarted == ["b"]
    assert turns.started == ["a"]


async def test_cancel_one_queued_run_by_id(turns):
    turns.accept("a")
    turns.accept("b")
    turns.accept("c")
    await turns.until_started("a")
    assert turns.coordinator.cancel("s1", "b") == 1
    assert turns.coordinator.cancel("s1", "unknown") == 0
    assert turns.unstarted == ["b"]
    turns.gate("a").set()
    turns.gate("c").set()
    await turns.idle()
    assert turns.outcome == {"a": "finished", "c": "finished"}


async def test_clear_queue_drops_only_waiting_runs(turns):
    turns.accept("a")
    turns.accept("b")
    turns.accept("c")
    await turns.until_started("a")
    assert len(turns.coordinator.clear_queue("s1")) == 2
    assert turns.coordinator.clear_queue("s1") == []
    assert turns.unstarted == ["b", "c"]
    assert turns.coordinator.live_run_ids == {"a"}
    turns.gate("a").set()
    await turns.idle()
    assert turns.outcome == {"a": "finished"}


async def test_steer_folds_into_the_active_turn(turns):
    turns.accept("host")
    await turns.until_started("host")
    assert turns.accept("steer", mode="steer") == (False, 0)
    steered = turns.coordinator.line("s1").steering[0]
    assert steered.state == RunState.STEERING
    assert turns.coordinator.queued("s1") == []  # not a queued prompt
    taken = turns.coordinator.take_steered("s1")
    assert [r.id for r in taken] == ["steer"] and taken[0].state == RunState.FOLDED
    assert turns.coordinator.take_steered("s1") == []
    turns.gate("host").set()
    await turns.idle()
    assert turns.started == ["host"]  # the folded run never runs on its own


async def test_steer_with_nothing_running_is_a_normal_run(turns):
    assert turns.accept("steer", mode="steer") == (False, 0)
    turns.gate("steer").set()
    await turns.idle()
    assert turns.outcome == {"steer": "finished"}


async def test_unfolded_steered_runs_run_after_the_host_before_the_queue(turns):
    turns.accept("host")
    await turns.until_started("host")
    turns.accept("queued")
    turns.accept("s1st", mode="steer")
    turns.accept("s2nd", mode="steer")
    queued = turns.coordinator.line("s1").waiting[0]
    assert queued.state == RunState.QUEUED
    turns.gate("host").set()  # the host ends without another model call
    await turns.until_started("s1st")
    assert [r.id for r in turns.coordinator.line("s1").waiting] == ["s2nd", "queued"]
    # s2nd now waits behind s1st: it is a queued prompt like any other (listed, clearable).
    assert [r.id for r in turns.coordinator.queued("s1")] == ["s2nd", "queued"]
    for run_id in ("s1st", "s2nd", "queued"):
        turns.gate(run_id).set()
    await turns.idle()
    assert turns.started == ["host", "s1st", "s2nd", "queued"]


async def test_cancel_drops_steered_runs(turns):
    turns.accept("host")
    await turns.until_started("host")
    turns.accept("steer", mode="steer")
    assert turns.coordinator.cancel("s1") == 2
    assert turns.unstarted == ["steer"]
    await turns.idle()
    assert turns.started == ["host"] and turns.outcome == {"host": "canceled"}


async def test_next_run_becomes_accepted_after_the_active_one_ends(turns):
    turns.accept("a")
    turns.accept("b")
    await turns.until_started("a")
    assert turns.coordinator.line("s1").waiting[0].state == RunState.QUEUED
    turns.gate("a").set()
    await turns.until_started("b")
    assert turns.coordinator.active_run("s1").state == RunState.ACTIVE
    # b is active now; a run accepted next waits behind it
    assert turns.accept("c") == (True, 1)
    for run_id in ("b", "c"):
        turns.gate(run_id).set()
    await turns.idle()
    assert turns.started == ["a", "b", "c"]


# ---------------------------------------------------------------------- RunEvents
class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def send(self, body: dict[str, Any]) -> None:
        self.sent.append(body)
        self.arrived.set()


async def test_deltas_are_sent_alone_with_interval_zero():
    rec = Recorder()
    events = RunEvents(rec.send, "file:///w", "s1", "r1", 0)
    for chunk in "abc":
        events.delta("text_delta", "m1", chunk)
    assert [n["text"] for n in rec.sent] == ["a", "b", "c"]
    assert all(n["runId"] == "r1" and n["sessionId"] == "s1" and n["workspace"] == "file:///w" for n in rec.sent)


async def test_deltas_are_joined_per_interval_and_flushed_by_the_timer():
    rec = Recorder()
    events = RunEvents(rec.send, "file:///w", "s1", "r1", 20)
    for chunk in ("Hel", "lo", " world"):
        events.delta("text_delta", "m1", chunk)
    assert [n["text"] for n in rec.sent] == ["Hel"]  # the first at once, the rest held until the interval ends
    rec.arrived.clear()
    await asyncio.wait_for(rec.arrived.wait(), 2)
    assert [(n["type"], n["text"]) for n in rec.sent] == [("text_delta", "Hel"), ("text_delta", "lo world")]
    await asyncio.sleep(0.05)  # an interval with nothing sent: the next delta goes out at once
    events.delta("text_delta", "m1", "!")
    assert [n["text"] for n in rec.sent] == ["Hel", "lo world", "!"]


async def test_pending_delta_goes_out_before_any_other_notification():
    rec = Recorder()
    events = RunEvents(rec.send, "file:///w", "s1", "r1", 10_000)
    events.delta("reasoning_delta", "m1", "think")
    events.delta("text_delta", "m1", "a")  # another kind: the reasoning is sent first
    events.delta("text_delta", "m1", "b")
    events.delta("text_delta", "m2", "c")  # another message: "ab" is sent first
    events.emit({"type": "tool_call", "messageId": "m2"})
    events.delta("text_delta", "m2", "d")
    events.emit({"type": "message_finished", "messageId": "m2"})
    events.delta("text_delta", "m3", "e")
    events.emit({"type": "run_complete", "text": "e"})
    events.delta("text_delta", "m3", "late")
    events.emit({"type": "session_updated"})
    events.flush()
    assert [(n["type"], n.get("text")) for n in rec.sent] == [
        ("reasoning_delta", "think"), ("text_delta", "a"), ("text_delta", "b"), ("text_delta", "c"),
        ("tool_call", None), ("text_delta", "d"), ("message_finished", None), ("text_delta", "e"),
        ("run_complete", "e"),
    ]
    assert events.completed


async def test_idle_sessions_are_not_kept(turns):
    # A workspace sees many sessions over its life: only those with runs keep a line.
    for n in range(50):
        turns.accept(f"r{n}", session=f"s{n}")
        turns.gate(f"r{n}").set()
    assert turns.coordinator.tracked() == 50
    for n in range(50):
        await turns.idle(f"s{n}")
    assert turns.coordinator.tracked() == 0
    assert turns.accept("again", session="s7") == (False, 0)  # a forgotten session takes runs as before
    turns.gate("again").set()
    await turns.idle("s7")
    assert turns.outcome["again"] == "finished" and turns.coordinator.tracked() == 0
