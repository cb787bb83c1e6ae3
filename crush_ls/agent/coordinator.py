"""Accepting, queueing, steering and cancelling the runs of each session.

The coordinator of a workspace keeps, per session, a line of runs: at most
one active run, the runs accepted after it (waiting, in order) and the
steered prompts waiting to be folded into the active turn. A worker task
per busy session takes runs from the line one at a time and executes each
through `execute_run` (the turn loop).

Every public method here is synchronous: a request takes effect the moment
it arrives (PROTOCOL: "requests take effect in the order they arrive"), and
notifications it causes are sent after the request's response.

Cancel semantics follow Crush: a cancel ends the active run, every run
accepted before the cancel (a run cancelled before it became active, and not
waiting behind another, still stores its user message and a canceled
assistant message) and every steered prompt; runs accepted afterwards are
untouched. An idle cancel changes nothing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .events import RunEvents

log = logging.getLogger(__name__)


class RunState(enum.StrEnum):
    """Where a run is in its session's line. A StrEnum: each state is still the string it was."""

    ACCEPTED = "accepted"  # will start as soon as its worker gets to it
    QUEUED = "queued"  # waits behind another run of the session
    ACTIVE = "active"
    STEERING = "steering"  # waits to be folded into the active turn
    FOLDED = "folded"  # its prompt went into another run's turn
    DONE = "done"


@attrs.define(eq=False)
class Run:
    id: str
    session_id: str
    prompt: str
    attachments: list[dict[str, Any]]
    events: RunEvents
    mode: str = "queue"
    state: RunState = RunState.ACCEPTED
    canceled: bool = False  # cancelled before its turn started
    started: bool = False  # its turn is running (a cancel now interrupts it)
    folded: list[Run] = attrs.Factory(list)  # steered runs folded into this one
    task: asyncio.Task[None] | None = None
    summarize: bool = False  # an `agent/summarize` run, not a prompt
    # Editor context items (checked, their files named; agent/context.py); read into parts when the run starts.
    context: list[dict[str, Any]] = attrs.Factory(list)


@attrs.define(eq=False)
class SessionLine:
    active: Run | None = None
    waiting: deque[Run] = attrs.Factory(deque)
    steering: list[Run] = attrs.Factory(list)
    worker: asyncio.Task[None] | None = None


ExecuteRun = Callable[[Run], Awaitable[None]]
CompleteUnstarted = Callable[[Run], None]


class Coordinator:
    """The runs of one workspace. `execute_run` is the turn loop."""

    def __init__(self, execute_run: ExecuteRun, complete_unstarted: CompleteUnstarted) -> None:
        self._execute_run = execute_run
        self._complete_unstarted = complete_unstarted
        self._lines: dict[str, SessionLine] = {}
        self.live_run_ids: set[str] = set()

    # ------------------------------------------------------------------ queries
    def line(self, session_id: str) -> SessionLine:
        """The session's line; an idle session has none kept (an empty one is returned, not stored)."""
        return self._lines.get(session_id) or SessionLine()

    def tracked(self) -> int:
        """Sessions with runs in their line: idle ones are forgotten, so this never grows with sessions seen."""
        return len(self._lines)

    def is_busy(self, session_id: str) -> bool:
        line = self._lines.get(session_id)
        if line is not None and line.active is not None and line.active.events.completed:
            # Its run_complete is out while the worker still winds down: busy only if another run
            # follows, as the session_updated after run_complete says.
            return self.runs_after_active(session_id)
        return self.active_run(session_id) is not None

    def active_run(self, session_id: str) -> Run | None:
        """The running run, or the accepted one about to start (requests take effect at once)."""
        line = self._lines.get(session_id)
        if line is None:
            return None
        if line.active is not None:
            return line.active
        head = line.waiting[0] if line.waiting else None
        return head if head is not None and head.state == RunState.ACCEPTED and not head.canceled else None

    def runs_after_active(self, session_id: str) -> bool:
        """Another run will start when the active one ends (the session stays busy)."""
        line = self._lines.get(session_id)
        return line is not None and (bool(line.steering) or any(not r.canceled for r in line.waiting))

    def queued(self, session_id: str) -> list[Run]:
        line = self._lines.get(session_id)
        return [r for r in line.waiting if r.state == RunState.QUEUED] if line else []

    def all_queued(self) -> list[Run]:
        return [r for sid in self._lines for r in self.queued(sid)]

    def any_busy(self) -> bool:
        return any(self.active_run(session_id) for session_id in self._lines)

    def workers(self) -> list[asyncio.Task[None]]:
        return [line.worker for line in self._lines.values() if line.worker and not line.worker.done()]

    # ------------------------------------------------------------------ accepting
    def accept(self, run: Run) -> tuple[bool, int]:
        """Take an accepted run into its session's line; returns (queued, position)."""
        line = self._lines.get(run.session_id)
        if line is None:
            line = self._lines[run.session_id] = SessionLine()
        self.live_run_ids.add(run.id)
        if run.mode == "steer" and line.active is not None and not line.active.summarize:
            run.state = RunState.STEERING
            line.steering.append(run)
            return False, 0
        ahead = len(line.waiting) + (1 if line.active else 0)
        line.waiting.append(run)
        if ahead:
            run.state = RunState.QUEUED
            run.events.emit_soon({"type": "run_queued", "position": ahead})
        if line.worker is None or line.worker.done():
            line.worker = asyncio.get_running_loop().create_task(
                self._work(run.session_id, line), name=f"crush-ls session {run.session_id}"
            )
        return bool(ahead), ahead

    def take_steered(self, session_id: str) -> list[Run]:
        """The steered prompts to fold into the active turn at its next model call."""
        line = self.line(session_id)
        taken = [r for r in line.steering if not r.canceled]
        line.steering.clear()
        for run in taken:
            run.state = RunState.FOLDED
        return taken

    # ------------------------------------------------------------------ cancelling
    def cancel(self, session_id: str, run_id: str | None = None) -> int:
        """End the session's active, accepted, steered and queued runs (or just `run_id`)."""
        line = self._lines.get(session_id)
        if line is None:
            return 0
        count = 0
        active = line.active
        if active is not None and run_id in (None, active.id) and not active.canceled:
            if not active.started:
                active.canceled = True  # its turn sees this first thing and ends canceled
                count += 1
            elif active.task is not None and not active.task.done() and not active.task.cancelling():
                active.task.cancel()
                count += 1
        for run in list(line.steering):
            if run_id in (None, run.id):
                line.steering.remove(run)
                self._drop(run)
                count += 1
        for position, run in enumerate(list(line.waiting)):
            if run_id not in (None, run.id) or run.canceled:
                continue
            if position == 0 and line.active is None:
                # Not waiting behind another run: it starts, stores its prompt and ends canceled.
                run.canceled = True
            else:
                line.waiting.remove(run)
                self._drop(run)
            count += 1
        return count

    def clear_queue(self, session_id: str) -> list[Run]:
        """Drop the runs waiting behind another; they end canceled and store nothing. Returns them, oldest first."""
        line = self._lines.get(session_id)
        if line is None:
            return []
        dropped = [r for r in line.waiting if r.state == RunState.QUEUED and not r.canceled]
        for run in dropped:
            line.waiting.remove(run)
            self._drop(run)
        return dropped

    def pop_queue(self, session_id: str) -> Run | None:
        """Take back the newest run waiting behind another (it ends canceled, storing nothing)."""
        line = self._lines.get(session_id)
        waiting = [r for r in line.waiting if r.state == RunState.QUEUED and not r.canceled] if line else []
        if line is None or not waiting:
            return None
        line.waiting.remove(waiting[-1])
        self._drop(waiting[-1])
        return waiting[-1]

    def cancel_all(self) -> None:
        for session_id in list(self._lines):
            self.cancel(session_id)

    def _drop(self, run: Run) -> None:
        run.state = RunState.DONE
        self.live_run_ids.discard(run.id)
        self._complete_unstarted(run)

    # ------------------------------------------------------------------ running
    async def _turn(self, run: Run) -> None:
        # A task cancelled before its first step never runs its body (no run_complete),
        # so `cancel` interrupts only started turns and flags the others.
        run.started = True
        await self._execute_run(run)

    async def _work(self, session_id: str, line: SessionLine) -> None:
        """Run the session's runs one after another until its line is empty."""
        while line.waiting:
            run = line.waiting.popleft()
            line.active = run
            run.state = RunState.ACTIVE
            run.task = asyncio.get_running_loop().create_task(self._turn(run), name=f"crush-ls run {run.id}")
            try:
                await asyncio.shield(run.task)
            except asyncio.CancelledError:
                # The worker itself is being torn down: stop the run and let it finish.
                run.task.cancel()
                await asyncio.wait({run.task})
                raise
            finally:
                line.active = None
                run.state = RunState.DONE
                self.live_run_ids.discard(run.id)
                for steered in run.folded:  # completed right after their host
                    steered.state = RunState.DONE
                    self.live_run_ids.discard(steered.id)
            # Steered prompts the finished turn never folded run as if queued, first.
            leftover, line.steering = line.steering, []
            for steered in reversed(leftover):
                steered.state = RunState.QUEUED  # waits behind the run ahead; the head becomes ACCEPTED below
                line.waiting.appendleft(steered)
            if line.waiting:
                line.waiting[0].state = RunState.ACCEPTED
            for position, steered in enumerate(leftover[1:], start=1):  # now waiting behind another
                steered.events.emit({"type": "run_queued", "position": position})
        line.worker = None
        if self._lines.get(session_id) is line:  # idle: the next accept starts a new line
            del self._lines[session_id]
