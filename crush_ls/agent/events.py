"""The notifications of one run, in order, with deltas joined.

`RunEvents` stamps every body with the workspace, session and run ids and
hands it to the transport's `send`. Text and reasoning deltas of a message
are sent at most once per `streamIntervalMs` (the first at once, those that
follow within the interval joined and sent when it ends); whatever is pending
goes out before any other notification of the run, so joined deltas always
precede the `tool_call`, `message_finished` or `run_complete` that follows
them. After `run_complete` nothing more of the run is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]


class RunEvents:
    def __init__(self, send: Send, workspace: str, session_id: str, run_id: str, interval_ms: float) -> None:
        self._send = send
        self._ids = {"workspace": workspace, "sessionId": session_id, "runId": run_id}
        self._interval = max(0.0, interval_ms) / 1000
        self._pending: dict[str, Any] | None = None  # the delta being joined
        self._timer: asyncio.TimerHandle | None = None  # sends it when the interval ends
        self._window: tuple[str, str] | None = None  # (kind, message) of the last delta sent...
        self._window_end = 0.0  # ...and the loop time until which the next one of it is held
        self.completed = False

    def emit(self, body: dict[str, Any]) -> None:
        """Send one notification of this run now (after any pending delta)."""
        self.flush()
        if self.completed:
            log.warning("dropped %s after run_complete of run %s", body.get("type"), self._ids["runId"])
            return
        body.update(self._ids)
        if body["type"] == "run_complete":
            self.completed = True
        self._send(body)

    def emit_soon(self, body: dict[str, Any]) -> None:
        """Send after the current request's response (used from request handlers)."""
        asyncio.get_running_loop().call_soon(self.emit, body)

    def delta(self, kind: str, message_id: str, text: str) -> None:
        """A text_delta / reasoning_delta: sent at once unless one of its message went out less than
        streamIntervalMs ago; then joined with what is pending and sent when that interval ends.
        (Sending the first of a burst at once keeps a timer off the loop for every delta of a
        slow stream, and the first token out of a 16 ms wait.)"""
        if not text or self.completed:
            return
        pending = self._pending
        if pending is not None:
            if pending["type"] == kind and pending["messageId"] == message_id:
                pending["text"] += text  # its timer is set
                return
            self.flush()
        if self._interval:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if now < self._window_end and self._window == (kind, message_id):
                self._pending = {"type": kind, "messageId": message_id, "text": text}
                self._timer = loop.call_at(self._window_end, self._on_timer)
                return
            self._window, self._window_end = (kind, message_id), now + self._interval
        self._send({"type": kind, "messageId": message_id, "text": text, **self._ids})

    def _on_timer(self) -> None:
        # The timer has fired: cancelling it now would count it as a cancelled timer still in the
        # loop's heap (one per flush; with many sessions streaming the loop keeps rebuilding its heap).
        self._timer = None
        self.flush()
        self._window_end = asyncio.get_running_loop().time() + self._interval  # what it sent opens one

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, None
        if pending is not None and not self.completed:
            pending.update(self._ids)
            self._send(pending)
