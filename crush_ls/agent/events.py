"""The notifications of one run, in order, with deltas joined.

`RunEvents` stamps every body with the workspace, session and run ids and
hands it to the transport's `send`. Text and reasoning deltas of a message
are joined and sent at most once per `streamIntervalMs`; whatever is pending
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
        self._timer: asyncio.TimerHandle | None = None
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
        """Queue a text_delta / reasoning_delta, joined with the pending one."""
        if not text:
            return
        pending = self._pending
        if self._interval == 0 and pending is None:  # not joined (streamIntervalMs 0): sent as it comes
            if not self.completed:
                self._send({"type": kind, "messageId": message_id, "text": text, **self._ids})
            return
        if pending is not None and (pending["type"] != kind or pending["messageId"] != message_id):
            self.flush()
            pending = None
        if pending is None:
            self._pending = {"type": kind, "messageId": message_id, "text": text}
        else:
            pending["text"] += text
        if self._interval == 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        # The timer has fired: cancelling it now would count it as a cancelled timer still in the
        # loop's heap (one per flush; with many sessions streaming the loop keeps rebuilding its heap).
        self._timer = None
        self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, None
        if pending is not None and not self.completed:
            pending.update(self._ids)
            self._send(pending)
