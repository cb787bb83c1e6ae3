"""The terminal client: one server child, one session, turns driven to their `run_complete`.

Ctrl-C while a turn runs sends `agent/cancel` (the server ends the run
`canceled`); a second Ctrl-C leaves at once. Permission requests are asked on
the terminal, or allowed outright with `--yolo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import Callable
from typing import Any

from .child import AgentServer, ServerExited
from .view import JsonView, TerminalView

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNFINISHED = 3  # max_tokens, content_filter, unknown: the answer may be cut short
EXIT_CANCELED = 130  # as a shell reports a Ctrl-C
EXIT_CODES = {"end_turn": EXIT_OK, "error": EXIT_ERROR, "canceled": EXIT_CANCELED}


def exit_code(finish_reason: str) -> int:
    return EXIT_CODES.get(finish_reason, EXIT_UNFINISHED)


class ChatApp:
    def __init__(self, server: AgentServer, view: TerminalView | JsonView, *, yolo: bool = False) -> None:
        self.server = server
        self.view = view
        self.yolo = yolo
        self.session_id: str | None = None
        self.context: list[dict[str, Any]] = []  # editor context items for the next prompt (`/add`)
        self._runs: dict[object, asyncio.Future[dict[str, Any]]] = {}  # by runId
        self._main_task: asyncio.Task[Any] | None = None
        self._cancel_task: asyncio.Task[Any] | None = None
        self._on_interrupt: Callable[[], None] = self.quit

    # -- wiring ---------------------------------------------------------------

    def attach(self) -> None:
        """Route the server's messages here and take over SIGINT (call inside the loop)."""
        loop = asyncio.get_running_loop()
        self._main_task = asyncio.current_task()
        self.server.rpc.on_notification = self._notification
        if isinstance(self.view, JsonView):
            self.view.on_output_closed = self.quit
        self.server.rpc.request_handlers["agent/requestPermission"] = self._request_permission
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self.interrupt)

    def detach(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def interrupt(self) -> None:
        self._on_interrupt()

    def quit(self) -> None:
        """Leave now: the main task is cancelled, its cleanup stops the server."""
        if self._main_task is not None:
            self._main_task.cancel()

    def _notification(self, method: str, params: Any) -> None:
        if method != "agent/notification" or not isinstance(params, dict):
            return
        self.view.any_notification(params)
        run = self._runs.get(params.get("runId"))
        if run is None:
            return
        self.view.run_notification(params)
        if params.get("type") == "run_complete" and not run.done():
            run.set_result(params)

    async def _request_permission(self, params: Any) -> dict[str, str]:
        if self.yolo:
            return {"decision": "allow"}
        from .ask import INTERRUPTED, ask_permission

        with self.view.paused():
            decision = await ask_permission(params.get("permission") or {}, self.view.question_console)
        if decision == INTERRUPTED:
            self.interrupt()
            if self._cancel_task is not None:
                # The cancel must reach the server before the answer, or the denied
                # call would simply end the turn `end_turn`.
                await asyncio.wait({self._cancel_task})
            decision = "deny"
        return {"decision": decision}

    # -- sessions ---------------------------------------------------------------

    async def open_session(self, *, session_id: str | None = None, latest: bool = False) -> dict[str, Any]:
        """The session to talk in: the given one, the folder's newest (`latest`), or a new one."""
        if session_id:
            session: dict[str, Any] = await self.server.ws_call("session/get", sessionId=session_id)
        elif latest:
            sessions = (await self.server.ws_call("session/list")).get("sessions") or []
            session = sessions[0] if sessions else await self.server.ws_call("session/create")
        else:
            session = await self.server.ws_call("session/create")
        self.session_id = session["id"]
        return session

    # -- a turn ---------------------------------------------------------------

    async def run_turn(self, prompt: str) -> dict[str, Any]:
        """Send `prompt` (with the `/add`ed context), show the run, and return its `run_complete`."""
        run_id = f"chat-{uuid.uuid4().hex[:12]}"
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._runs[run_id] = done  # before sending: notifications may follow the response at once
        self.view.begin_run()
        self._on_interrupt = lambda: self._cancel_run(run_id)
        try:
            extra = {"context": self.context} if self.context else {}
            await self.server.ws_call("agent/sendMessage", sessionId=self.session_id, prompt=prompt, runId=run_id,
                                      **extra)
            self.context = []  # sent with this prompt, stored with it
            await self._wait(done)
            return done.result()
        finally:
            self._on_interrupt = self.quit
            self._runs.pop(run_id, None)
            self.view.end_run()

    def _cancel_run(self, run_id: str) -> None:
        self._on_interrupt = self.quit  # the next Ctrl-C leaves
        self.view.info("Canceling… (Ctrl-C again to quit)")
        self._cancel_task = asyncio.get_running_loop().create_task(
            self.server.ws_call("agent/cancel", sessionId=self.session_id, runId=run_id))
        # errors of the cancel itself show as the run's end (or the server's exit)
        self._cancel_task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _wait(self, done: asyncio.Future[dict[str, Any]]) -> None:
        either: set[asyncio.Future[Any]] = {done, self.server.reader_done}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return
        await self.server.wait_exit()
        raise ServerExited("crush-ls exited in the middle of a turn", self.server.stderr_tail)


def print_server_exit(view: TerminalView | JsonView, exc: Exception) -> None:
    view.error(str(exc))
    for line in getattr(exc, "stderr_tail", [])[-15:]:
        print(line, file=sys.stderr)
