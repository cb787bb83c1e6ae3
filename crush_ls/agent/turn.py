"""One run's turn: model step -> streamed deltas -> tool calls -> results -> next step.

`Turn.play` runs until the model ends the turn (or `MAX_STEPS`). Whatever
happens, `Turn.complete` sends the run's one `run_complete`; the cancel and
error paths first store what the turn produced, so a cancelled turn reads
back from storage as a user message and an assistant message finished
`canceled` (Crush's semantics).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import random
from typing import Any, Protocol

from ..protocol.encode import iso, message_to_wire, usage_to_wire
from ..protocol.errors import StorageFailed
from ..providers.base import (
    END_TURN,
    TOOL_USE,
    UNKNOWN,
    Finish,
    ModelCall,
    ModelInfo,
    Provider,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from ..storage import DEFAULT_TITLE, Message, Session, now
from ..tools.base import ToolResult
from ..tools.diagnostics import DiagnosticsSource
from .context import context_part, read_context
from .coordinator import Run
from .events import RunEvents
from .summary import continuation_parts, summarized, summary_call
from .tool_calls import NOT_RUN, ToolDeps, call_tool, result_part
from .usage import RunUsage

log = logging.getLogger(__name__)

CANCELED = "canceled"
ERROR = "error"
MAX_STEPS = 50
CANCELED_MESSAGE = "User canceled request"
CANCELED_TOOL_RESULT = "Error: user cancelled assistant tool calling"


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter; CRUSH_LS_RETRY_BASE_MS shortens it in tests."""
    if retry_after is not None:
        return min(retry_after, 60.0)
    base = float(os.environ.get("CRUSH_LS_RETRY_BASE_MS", "1000")) / 1000
    return min(base * 2.0 ** (attempt - 1) * (1 + random.random() / 4), 60.0)


class TurnDeps(ToolDeps, Protocol):
    """What a turn needs from its workspace's agent (`Agent` is the one implementation)."""

    diagnostics: DiagnosticsSource | None  # the editor's diagnostics (agent/diagnostics)

    async def system_prompt(self, with_tools: bool) -> str: ...

    def tool_specs(self, session_id: str | None = None) -> list[ToolSpec]: ...

    async def history(self, session_id: str) -> list[Message]:
        """The messages the model sees (from the last summary on)."""
        ...

    def take_steered(self, session_id: str) -> list[Run]:
        """Prompts steered into the session's active run, to fold into the next step."""
        ...

    async def title_session(self, session: Session, prompt: str, events: RunEvents) -> None: ...

    async def account(self, session_id: str, usage: Usage, events: RunEvents, info: ModelInfo) -> RunUsage:
        """Add one model call's usage to the session; returns the call's usage and cost."""
        ...

    def session_updated(self, session: Session, events: RunEvents | None, busy: bool | None = None) -> None: ...

    def context_nearly_full(self, session_id: str, info: ModelInfo) -> bool: ...


def run_complete_body(text: str, finish_reason: str, usage: RunUsage) -> dict[str, Any]:
    return {"type": "run_complete", "text": text, "finishReason": finish_reason, "usage": usage_to_wire(usage)}


def text_attachment(attachment: dict[str, Any]) -> bool:
    mime = attachment.get("mimeType") or ""
    return attachment.get("text") is not None or mime.startswith("text/")


def user_parts(prompt: str, attachments: list[dict[str, Any]],
               context: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The user message: the prompt with text attachments inlined, the editor context's parts
    (agent/context.py), other attachments as binary parts."""
    inlined: list[str] = []
    binary: list[dict[str, Any]] = []
    for att in attachments:
        name = att.get("path") or att.get("uri") or "attachment"
        if text_attachment(att):
            text = att.get("text")
            if text is None and att.get("content"):
                text = base64.b64decode(att["content"]).decode("utf-8", errors="replace")
            inlined.append(f"<file path='{name}'>\n{text or ''}\n</file>")
        else:
            part = {"type": "binary", "mimeType": att.get("mimeType") or "application/octet-stream",
                    "data": att.get("content") or ""}
            if att.get("path") or att.get("uri"):
                part["path"] = name
            binary.append(part)
    text = prompt
    if inlined:
        attached = "<system_info>Attached files:</system_info>\n" + "\n".join(inlined)
        text = (prompt + "\n\n" if prompt.strip() else "") + attached
    return [{"type": "text", "text": text}, *(context or []), *binary]


class Turn:
    def __init__(self, deps: TurnDeps, run: Run, provider: Provider) -> None:
        self.deps = deps
        self.run = run
        self.events = run.events
        self.store = deps.store
        self.user_message: Message | None = None
        self.assistant: Message | None = None  # the current step's message
        self.last_assistant: Message | None = None
        # What the model gets of the session's messages, kept as they come: a step of a long session
        # rebuilt it from every message (2,000 dicts for each model call).
        self.history: list[dict[str, Any]] = []
        self.usage = RunUsage()
        self.finish_reason = UNKNOWN
        self.error: str | None = None
        self.open_calls: list[tuple[dict[str, Any], ToolCallRequest]] = []
        self.summary_message: Message | None = None  # a summary being written
        self.provider = provider  # the model of the whole run, even if agent/setModel replaces it
        # Notifications about a stored message, held until it is committed: (message id, events, body).
        self.unannounced: list[tuple[str, RunEvents, dict[str, Any]]] = []

    # ------------------------------------------------------------------ the happy path
    async def play(self) -> None:
        if self.run.canceled:  # cancelled between acceptance and becoming active
            raise asyncio.CancelledError
        if self.run.summarize:
            self.events.emit({"type": "run_started"})
            await self.summarize()
            return
        session = self.store.sessions[self.run.session_id]
        first_prompt = session.message_count == 0
        await self.read_context(self.run)
        self.queue_user_message(start=True)  # the prompt is on disk before its run_started goes out
        self.history = await self.model_history()  # read behind that write: it holds the prompt
        await self.announce()
        if first_prompt and session.title == DEFAULT_TITLE:  # a title given at creation is kept
            await self.deps.title_session(session, self.run.prompt, self.events)
        for step in range(MAX_STEPS):
            await self.fold_steered()
            reason = await self.model_step(step)
            if reason == TOOL_USE and self.deps.context_nearly_full(self.run.session_id, self.provider.info):
                # Crush: stop, summarize, and go on from the summary with the original request.
                if await self.run_tools():
                    self.finish_reason = END_TURN
                    return
                await self.summarize()
                self.history = await self.model_history()
                await self.store_continuation()
                continue
            if reason != TOOL_USE:
                self.finish_reason = reason
                if reason == END_TURN and self.deps.context_nearly_full(self.run.session_id, self.provider.info):
                    answer = self.last_assistant
                    await self.summarize()
                    # The run still ends with its answer, not with the summary written after it.
                    self.last_assistant, self.finish_reason = answer, reason
                return
            if await self.run_tools():
                self.finish_reason = END_TURN  # a denial ends the turn, as in Crush
                return
        log.warning("run %s hit the step limit (%d)", self.run.id, MAX_STEPS)
        self.finish_reason = UNKNOWN

    async def model_history(self) -> list[dict[str, Any]]:
        return [m.for_model() for m in await self.deps.history(self.run.session_id)]

    async def summarize(self) -> None:
        """Write a summary message; the session's history starts from it afterwards."""
        history = await self.store.history(self.run.session_id)
        if not history:
            self.finish_reason = END_TURN
            return
        call = summary_call(history, self.run.session_id, self.provider.info.max_tokens)
        message = await self.new_assistant_message(is_summary=True)
        self.summary_message = message
        reason, usage = await self.call_model(call, message)
        session = self.store.sessions[self.run.session_id]
        summarized(session, message, usage)
        self.store.save_session(session)
        self.deps.session_updated(session, self.events)
        self.summary_message = None
        self.finish_reason = reason

    # ------------------------------------------------------------------ stored, then announced
    def created(self, message: Message, events: RunEvents | None = None, *bodies: dict[str, Any]) -> None:
        """Hold `message_created` (and `bodies` after it) until `announce` sees the message committed."""
        events = events or self.events
        self.unannounced.append((message.id, events, {"type": "message_created", "message": message_to_wire(message)}))
        self.unannounced.extend((message.id, events, body) for body in bodies)

    async def announce(self) -> None:
        """Send what waits for its message, once that is committed: a client is never told of
        a message that a crash would lose (PROTOCOL: Durability)."""
        while self.unannounced:
            message_id, events, body = self.unannounced[0]
            try:
                await self.store.committed(message_id)
            except StorageFailed:
                self.unannounced = [u for u in self.unannounced if u[0] != message_id]
                raise
            self.unannounced.pop(0)
            events.emit(body)

    async def announce_at_end(self) -> None:
        """`announce` on the way out of a run: a message that did not land is an agent_error."""
        try:
            await self.announce()
        except StorageFailed as exc:
            self.events.emit(self.agent_error(exc.message, "internal", False, will_retry=False))

    async def store_continuation(self) -> None:
        message = self.store.create_message(self.run.session_id, "user", continuation_parts(self.run.prompt))
        self.history.append(message.for_model())
        self.created(message)
        await self.announce()

    async def read_context(self, run: Run) -> None:
        """The run's editor context read into its parts (files, selections, diagnostics), once."""
        if run.context and "type" not in run.context[0]:
            run.context = await read_context(run.context, self.deps.root, run.session_id, self.deps.files,
                                             self.deps.diagnostics)

    @staticmethod
    def prompt_parts(run: Run) -> list[dict[str, Any]]:
        # Items not read (a run cancelled before it started) are stored as the client sent them.
        context = [c if "type" in c else context_part(c) for c in run.context]
        return user_parts(run.prompt, run.attachments, context)

    def queue_user_message(self, start: bool = False) -> None:
        self.user_message = self.store.create_message(self.run.session_id, "user", self.prompt_parts(self.run))
        if start:
            self.unannounced.append((self.user_message.id, self.events, {"type": "run_started"}))
        self.created(self.user_message)

    async def fold_steered(self) -> None:
        steered_runs = self.deps.take_steered(self.run.session_id)
        self.run.folded.extend(steered_runs)  # first: each gets its run_complete whatever happens next
        for steered in steered_runs:
            await self.read_context(steered)
            message = self.store.create_message(self.run.session_id, "user", self.prompt_parts(steered))
            self.history.append(message.for_model())
            self.created(message, steered.events)
        await self.announce()

    async def new_assistant_message(self, is_summary: bool = False) -> Message:
        info = self.provider.info
        message = self.store.create_message(
            self.run.session_id, "assistant", [], model=info.model, provider=info.provider, is_summary=is_summary
        )
        self.assistant = self.last_assistant = message
        self.created(message)
        await self.announce()
        return message

    async def model_step(self, step: int) -> str:
        call = ModelCall(
            system=await self.deps.system_prompt(self.provider.info.supports_tools),
            messages=list(self.history),  # the turn's list grows on: the call keeps what it was
            tools=self.deps.tool_specs(self.run.session_id) if self.provider.info.supports_tools else [],
            prompt=self.run.prompt,
            step=step,
            max_tokens=self.provider.info.max_tokens,
        )
        message = await self.new_assistant_message()
        self.history.append(message.for_model())
        reason, _usage = await self.call_model(call, message)
        return reason

    async def call_model(self, call: ModelCall, message: Message) -> tuple[str, RunUsage]:
        """One model call into `message`, retried on retryable errors; returns (finish, usage)."""
        attempt = 0
        while True:
            try:
                usage, reason = await self.stream(call, message)
                break
            except ProviderError as err:
                if not (err.retryable and attempt < self.provider.max_retries):
                    raise
                attempt += 1
                self.events.emit(self.agent_error(err.message, err.code, True, will_retry=True))
                message.parts.clear()  # the retried call streams the step again
                self.open_calls.clear()
                await asyncio.sleep(retry_delay(attempt, err.retry_after))
        step_usage = await self.deps.account(self.run.session_id, usage, self.events, self.provider.info)
        self.usage.add(step_usage)
        await self.finish_message(message, reason, step_usage)
        return reason, step_usage

    async def stream(self, call: ModelCall, message: Message) -> tuple[Usage, str]:
        usage = Usage()
        reason: str | None = None
        async for event in self.provider.stream(call):
            if isinstance(event, TextDelta):
                self.append_text(message, "text", event.text)
                self.events.delta("text_delta", message.id, event.text)
            elif isinstance(event, ReasoningDelta):
                part = self.append_text(message, "reasoning", event.text)
                if event.signature:
                    part["signature"] = event.signature
                self.events.delta("reasoning_delta", message.id, event.text)
            elif isinstance(event, ToolCallRequest):
                part = {"type": "tool_call", "id": event.id, "name": event.name, "input": event.input,
                        "status": "pending"}
                message.parts.append(part)
                self.open_calls.append((part, event))
                self.announce_call(part)
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finish):
                reason = event.reason
        if reason is None:
            raise ProviderError("the model's stream ended before it finished", code="connection")
        if reason == TOOL_USE and not self.open_calls:
            reason = END_TURN
        elif self.open_calls:
            reason = TOOL_USE
        return usage, reason

    @staticmethod
    def append_text(message: Message, kind: str, text: str) -> dict[str, Any]:
        last = message.parts[-1] if message.parts else None
        if last is not None and last["type"] == kind:
            last["text"] += text
            return last
        part = {"type": kind, "text": text}
        message.parts.append(part)
        return part

    async def finish_message(self, message: Message, reason: str, usage: RunUsage | None,
                             detail: str | None = None) -> None:
        finish: dict[str, Any] = {"type": "finish", "reason": reason, "time": iso(now())}
        if detail:
            finish["message"] = detail
        message.parts.append(finish)
        self.store.update_message(message)
        await self.store.committed(message.id)  # a client told a message finished finds it so after a crash
        body: dict[str, Any] = {"type": "message_finished", "messageId": message.id, "finishReason": reason}
        if usage is not None:
            body["usage"] = usage_to_wire(usage)
        self.events.emit(body)

    # ------------------------------------------------------------------ tools
    def announce_call(self, part: dict[str, Any]) -> None:
        self.events.emit({
            "type": "tool_call",
            "messageId": self.assistant.id if self.assistant else None,
            "toolCall": {k: part[k] for k in ("id", "name", "input", "status")},
        })

    def set_status(self, part: dict[str, Any], status: str) -> None:
        part["status"] = status
        self.announce_call(part)

    async def run_tools(self) -> bool:
        """Run the step's tool calls in order; True when a denial ends the turn."""
        stop = False
        while self.open_calls:
            part, request = self.open_calls[0]
            if stop:
                result = ToolResult(NOT_RUN, is_error=True)
                self.set_status(part, "canceled")
            else:
                message_id = self.user_message.id if self.user_message else None
                result = await call_tool(self.deps, self.run, request, message_id,
                                         functools.partial(self.set_status, part))
                stop = result.stop_turn
            self.open_calls.pop(0)
            await self.store_result(part, result)
        if self.assistant is not None:
            self.store.update_message(self.assistant)
        return stop

    async def store_result(self, part: dict[str, Any], result: ToolResult) -> None:
        stored = result_part(part, result)
        message = self.store.create_message(self.run.session_id, "tool", [stored])
        self.history.append(message.for_model())
        body = {k: v for k, v in stored.items() if k != "type"}
        self.created(message, None, {"type": "tool_result", "messageId": message.id, **body})
        await self.announce()

    # ------------------------------------------------------------------ endings
    async def end_canceled(self) -> None:
        """Store what a cancelled turn has: its prompt, a canceled assistant message, tool errors."""
        self.finish_reason = CANCELED
        await self.announce_at_end()  # what the cancel interrupted on its way out
        if self.summary_message is not None:  # a half-written summary is dropped, as in Crush
            self.store.delete_message(self.summary_message)
            if self.last_assistant is self.summary_message:
                self.last_assistant = self.assistant = None
            self.summary_message = None
        if self.run.summarize:
            return
        if self.user_message is None:
            self.queue_user_message()
            await self.announce()
        # Announced (and stored) on the message that holds the calls, before a new one is made.
        for part, _request in self.open_calls:
            self.set_status(part, "canceled")
        if self.open_calls and self.assistant is not None and self.assistant.finish_reason() is not None:
            self.store.update_message(self.assistant)
        if self.assistant is None or self.assistant.finish_reason() is not None:
            await self.new_assistant_message()
        assert self.assistant is not None
        await self.finish_message(self.assistant, CANCELED, None, CANCELED_MESSAGE)
        for part, _request in self.open_calls:
            await self.store_result(part, ToolResult(CANCELED_TOOL_RESULT, is_error=True))
        self.open_calls.clear()

    async def end_with_error(self, message: str, code: str, retryable: bool) -> None:
        self.finish_reason = ERROR
        self.error = message
        await self.announce_at_end()
        if self.assistant is not None and self.assistant.finish_reason() is None:
            for part, _request in self.open_calls:
                self.set_status(part, "failed")
            await self.finish_message(self.assistant, ERROR, None, message)
            for part, _request in self.open_calls:
                await self.store_result(part, ToolResult("There was an error while executing the tool", is_error=True))
            self.open_calls.clear()
        self.events.emit(self.agent_error(message, code, retryable, will_retry=False))

    @staticmethod
    def agent_error(message: str, code: str, retryable: bool, *, will_retry: bool) -> dict[str, Any]:
        return {"type": "agent_error", "message": message, "code": code,
                "retryable": retryable, "willRetry": will_retry}

    def complete(self) -> None:
        """Send run_complete: exactly once, the run's last notification; then the folded runs'."""
        last = self.last_assistant
        body = run_complete_body(last.text() if last else "", self.finish_reason, self.usage)
        if last is not None:
            body["messageId"] = last.id
        if self.error is not None:
            body["error"] = self.error
        self.events.emit(body)
        for steered in self.run.folded:
            folded = dict(body, usage=usage_to_wire(), foldedInto=self.run.id)
            folded.pop("error", None)
            steered.events.emit(folded)
