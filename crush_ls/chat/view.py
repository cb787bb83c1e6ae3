"""How a run looks: rich output for a person, or NDJSON for scripts.

`TerminalView` keeps the blocks of the running turn (assistant text, tool
calls) in order. Blocks that are finished are printed for good; the rest stay
in a `rich.live.Live` area that redraws as deltas arrive (a spinner until the
first token). `JsonView` prints every `agent/notification` as one JSON line
and nothing else on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.spinner import Spinner
from rich.syntax import Syntax
from rich.text import Text

from ..protocol.params import range_lines

TERMINAL_TOOL_STATUSES = {"completed", "failed", "canceled"}
STATUS_MARKS = {
    "pending": ("○", "dim"),
    "awaiting_permission": ("?", "yellow"),
    "running": ("…", "cyan"),
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "canceled": ("⊘", "yellow"),
}
FINISH_STYLES = {"end_turn": "green", "canceled": "yellow", "error": "red"}
MAIN_INPUT_KEYS = ("file_path", "path", "pattern", "command", "url")
RESULT_PREVIEW_LINES = 3
REDRAW_INTERVAL_S = 0.08  # the live area (spinner, streaming text) redraws at most this often


def input_summary(tool_input: Any, width: int = 80) -> str:
    """The one argument of a tool call a person wants to see (its path, command, ...)."""
    if isinstance(tool_input, dict):
        for key in MAIN_INPUT_KEYS:
            if isinstance(tool_input.get(key), str):
                return _shorten(tool_input[key], width)
        if not tool_input:
            return ""
    return _shorten(json.dumps(tool_input, ensure_ascii=False), width)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def usage_line(finish_reason: str, usage: dict[str, Any] | None, seconds: float | None = None) -> Text:
    usage = usage or {}
    parts = [
        f"{usage.get('inputTokens', 0)} in",
        f"{usage.get('outputTokens', 0)} out",
        f"${usage.get('cost') or 0:.4f}",
    ]
    if seconds is not None:
        parts.append(f"{seconds:.1f}s")
    line = Text("── ", style="dim")
    line.append(finish_reason, style=FINISH_STYLES.get(finish_reason, "yellow"))
    line.append(" · " + " · ".join(parts), style="dim")
    return line


# -- blocks of a turn ----------------------------------------------------------


@attrs.define
class TextBlock:
    """Assistant text (and reasoning) of one message, printed for good paragraph by paragraph."""

    message_id: str
    text: str = ""
    reasoning: str = ""
    done: bool = False
    printed: int = 0  # text[:printed] is already on screen for good
    reasoning_printed: bool = False

    def render(self) -> RenderableType:
        parts: list[RenderableType] = []
        if self.reasoning and not self.reasoning_printed:
            parts.append(Text(self.reasoning.strip(), style="dim italic"))
        if self.text[self.printed:].strip():
            parts.append(MarkdownPart(self.text[self.printed:], gap=self.printed > 0))
        return Group(*parts)

    def take_finished_paragraphs(self) -> RenderableType | None:
        """The paragraphs that can no longer change, to print for good, so that the
        live area stays small (a live area taller than the screen cannot be redrawn)."""
        cut = stable_end(self.text, self.printed)
        if cut <= self.printed:
            return None
        parts: list[RenderableType] = []
        if self.reasoning and not self.reasoning_printed:
            parts.append(Text(self.reasoning.strip(), style="dim italic"))
            self.reasoning_printed = True
        parts.append(MarkdownPart(self.text[self.printed:cut], gap=self.printed > 0))
        self.printed = cut
        return Group(*parts)


class MarkdownPart:
    """Markdown of a piece of a message, with one blank line before it when it follows
    another piece (as whole-message Markdown would separate them), and none otherwise."""

    def __init__(self, source: str, *, gap: bool) -> None:
        self.source = source
        self.gap = gap

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        lines = console.render_lines(Markdown(self.source), options, pad=False)
        while lines and all(_is_blank(segment) for segment in lines[0]):
            lines.pop(0)  # rich starts lists and quotes with a blank line
        if self.gap:
            yield Segment.line()
        for line in lines:
            yield from line
            yield Segment.line()


def _is_blank(segment: Segment) -> bool:
    # a code block's first line is blank too, but coloured: keep it
    return not segment.text.strip() and not (segment.style and segment.style.bgcolor)


def stable_end(text: str, start: int) -> int:
    """End of the last blank line after `start` that is outside a code fence (or `start`)."""
    cut, offset, in_fence = start, start, False
    for line in text[start:].splitlines(keepends=True):
        offset += len(line)
        if not line.endswith("\n"):
            break  # a line still being written
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and not line.strip() and offset - len(line) > start:
            cut = offset
    return cut


@attrs.define
class ToolBlock:
    id: str
    name: str
    input: Any = None
    status: str = "pending"
    result: dict[str, Any] | None = None
    note: str = ""  # e.g. the permission decision

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_TOOL_STATUSES and (self.result is not None or self.status == "canceled")

    def render(self) -> RenderableType:
        mark, style = STATUS_MARKS.get(self.status, ("•", ""))
        head = Text()
        head.append(f"{mark} ", style=style)
        head.append(self.name, style="bold")
        head.append(f"  {input_summary(self.input)}", style="cyan")
        if self.note:
            head.append(f"  {self.note}", style="yellow")
        return Group(head, *render_tool_result(self.result))


def render_tool_result(result: dict[str, Any] | None) -> list[RenderableType]:
    if not result:
        return []
    metadata = result.get("metadata") or {}
    diff = metadata.get("diff") if isinstance(metadata, dict) else None
    if diff:
        return [Syntax(diff.rstrip("\n"), "diff", theme="ansi_dark", background_color="default")]
    content = str(result.get("content") or "")
    lines = content.splitlines()
    preview = "\n".join("  " + line for line in lines[:RESULT_PREVIEW_LINES])
    if len(lines) > RESULT_PREVIEW_LINES:
        preview += f"\n  … {len(lines) - RESULT_PREVIEW_LINES} more lines"
    return [Text(preview, style="red" if result.get("isError") else "dim")] if preview else []


# -- the views -----------------------------------------------------------------


class TerminalView:
    """Renders one run at a time for a person."""

    def __init__(self, console: Console | None = None, err_console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.err = err_console or Console(stderr=True, highlight=False)
        self._blocks: list[TextBlock | ToolBlock] = []
        self._printed_tools: set[str] = set()  # later updates of these are not shown again
        self._errors_shown: set[str] = set()  # run_complete.error repeats the last agent_error
        self._live: Live | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._status = "Thinking…"
        self._started = 0.0

    # turn boundaries

    def begin_run(self) -> None:
        self._blocks = []
        self._printed_tools = set()
        self._errors_shown = set()
        self._status = "Thinking…"
        self._started = time.monotonic()
        self._start_live()

    def end_run(self) -> None:
        self._commit(everything=True)
        self._stop_live()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing while the terminal asks the person something."""
        was_live = self._live is not None
        self._stop_live()
        try:
            yield
        finally:
            if was_live:
                self._start_live()

    def _start_live(self) -> None:
        # No refresh thread: rich's Live would redraw from it while this thread prints
        # finished blocks, and the two can disagree on the height to erase. Every draw
        # happens here, on the event loop, from `_tick`.
        if self._live is None:
            self._live = Live(
                console=self.console, get_renderable=self._render_live, auto_refresh=False,
                transient=True, vertical_overflow="visible", redirect_stdout=False, redirect_stderr=False,
            )
            self._live.start()
            self._tick()

    def _tick(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._ticker = asyncio.get_running_loop().call_later(REDRAW_INTERVAL_S, self._tick)

    def _stop_live(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render_live(self) -> RenderableType:
        parts = [block.render() for block in self._blocks]
        waiting = not any(isinstance(b, TextBlock) and b.text for b in self._blocks)
        if waiting or (self._blocks and not isinstance(self._blocks[-1], TextBlock)):
            parts.append(Spinner("dots", text=Text(self._status, style="dim")))
        return Group(*parts)

    def _commit(self, everything: bool = False) -> None:
        """Print for good the leading blocks that are finished (all of them at the end of
        a run), then the finished paragraphs of a leading text block still streaming."""
        while self._blocks and (everything or self._blocks[0].done):
            block = self._blocks.pop(0)
            if isinstance(block, ToolBlock):
                self._printed_tools.add(block.id)
            self.console.print(block.render())
        if self._blocks and isinstance(self._blocks[0], TextBlock):
            finished = self._blocks[0].take_finished_paragraphs()
            if finished is not None:
                self.console.print(finished)

    # messages outside the run's notifications

    def info(self, text: str) -> None:
        self.console.print(Text(text, style="dim"), soft_wrap=True)

    def error(self, text: str) -> None:
        # soft_wrap: a message stays one line in a log or a pipe; the terminal wraps it
        self.err.print(Text(text, style="bold red"), soft_wrap=True)

    # notifications of the run

    @property
    def question_console(self) -> Console:
        # `crush-ls chat ... | less`: the question goes to the terminal, not into the pipe
        return self.console if self.console.is_terminal else self.err

    def any_notification(self, note: dict[str, Any]) -> None:
        pass  # only the notifications of our runs are shown

    def run_notification(self, note: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + str(note.get("type")), None)
        if handler is not None:
            handler(note)
            self._commit()

    def _on_run_queued(self, note: dict[str, Any]) -> None:
        self._status = f"Queued behind {note.get('position', '?')} run(s)…"

    def _on_run_started(self, note: dict[str, Any]) -> None:
        self._status = "Thinking…"

    def _text_block(self, message_id: str) -> TextBlock:
        last = self._blocks[-1] if self._blocks else None
        if isinstance(last, TextBlock) and last.message_id == message_id:
            return last
        if isinstance(last, TextBlock):
            last.done = True
        block = TextBlock(message_id)
        self._blocks.append(block)
        return block

    def _on_text_delta(self, note: dict[str, Any]) -> None:
        self._text_block(note.get("messageId", "")).text += note.get("text", "")

    def _on_reasoning_delta(self, note: dict[str, Any]) -> None:
        self._text_block(note.get("messageId", "")).reasoning += note.get("text", "")

    def _tool_block(self, tool_call_id: str, name: str = "") -> ToolBlock:
        if tool_call_id in self._printed_tools:
            return ToolBlock(tool_call_id, name)  # already on screen for good: a detached copy
        for block in self._blocks:
            if isinstance(block, ToolBlock) and block.id == tool_call_id:
                return block
        for block in self._blocks:
            if isinstance(block, TextBlock):
                block.done = True  # text before a tool call is complete
        block = ToolBlock(tool_call_id, name)
        self._blocks.append(block)
        return block

    def _on_tool_call(self, note: dict[str, Any]) -> None:
        call = note.get("toolCall") or {}
        block = self._tool_block(call.get("id", ""), call.get("name", ""))
        block.name = call.get("name") or block.name
        block.input = call.get("input", block.input)
        block.status = call.get("status") or block.status
        self._status = f"Running {block.name}…" if block.status == "running" else "Thinking…"

    def _on_tool_result(self, note: dict[str, Any]) -> None:
        block = self._tool_block(note.get("toolCallId", ""), note.get("name", ""))
        block.result = note
        if block.status not in TERMINAL_TOOL_STATUSES:
            block.status = "failed" if note.get("isError") else "completed"

    def _on_permission_requested(self, note: dict[str, Any]) -> None:
        permission = note.get("permission") or {}
        block = self._tool_block(permission.get("toolCallId", ""), permission.get("tool", ""))
        block.note = "waiting for permission"
        self._status = "Waiting for permission…"

    def _on_permission_resolved(self, note: dict[str, Any]) -> None:
        block = self._tool_block(note.get("toolCallId", ""))
        block.note = {"allow": "allowed", "allow_session": "allowed for this session"}.get(
            note.get("decision", ""), str(note.get("decision", "")))
        self._status = "Thinking…"

    def _on_message_finished(self, note: dict[str, Any]) -> None:
        for block in self._blocks:
            if isinstance(block, TextBlock) and block.message_id == note.get("messageId"):
                block.done = True

    def _on_agent_error(self, note: dict[str, Any]) -> None:
        self._commit(everything=True)
        retry = " (retrying)" if note.get("willRetry") else ""
        self._errors_shown.add(str(note.get("message")))
        self.console.print(Text(f"error [{note.get('code')}]: {note.get('message')}{retry}", style="red"))

    def _on_run_complete(self, note: dict[str, Any]) -> None:
        self._commit(everything=True)
        reason = note.get("finishReason", "unknown")
        if note.get("error") and str(note["error"]) not in self._errors_shown:
            self.console.print(Text(str(note["error"]), style="red"))
        self.console.print(usage_line(reason, note.get("usage"), time.monotonic() - self._started))


class JsonView:
    """NDJSON on stdout, one line per `agent/notification`; people's messages go to stderr."""

    def __init__(self, out: Any = None, err_console: Console | None = None) -> None:
        self._out = out or sys.stdout
        self.err = err_console or Console(stderr=True, highlight=False)
        self.on_output_closed: Callable[[], None] = lambda: None

    def begin_run(self) -> None:
        pass

    def end_run(self) -> None:
        pass

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        yield

    def info(self, text: str) -> None:
        pass  # stdout is for notifications only

    def error(self, text: str) -> None:
        self.err.print(Text(text, style="bold red"), soft_wrap=True)

    @property
    def question_console(self) -> Console:
        return self.err

    def any_notification(self, note: dict[str, Any]) -> None:
        """Every notification of the connection, exactly as sent, one per line."""
        try:
            self._out.write(json.dumps(note, ensure_ascii=False) + "\n")
            self._out.flush()
        except BrokenPipeError:  # e.g. `| head -1`: nobody reads any more, so stop
            self._out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the view
            os.dup2(self._out.fileno(), sys.stdout.fileno())  # no second error when Python exits
            self.on_output_closed()

    def run_notification(self, note: dict[str, Any]) -> None:
        pass  # already printed by any_notification


# -- stored sessions -----------------------------------------------------------


def sessions_table(sessions: list[dict[str, Any]]) -> RenderableType:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "Title", "Messages", "Tokens in/out", "Cost", "Updated"):
        table.add_column(column, no_wrap=column != "Title")
    for session in sessions:
        table.add_row(
            session.get("id", ""), session.get("title") or "(untitled)", str(session.get("messageCount", 0)),
            f"{session.get('promptTokens', 0)}/{session.get('completionTokens', 0)}",
            f"${session.get('cost') or 0:.4f}", _short_time(session.get("updatedAt")),
        )
    return table


def _short_time(iso: str | None) -> str:
    return (iso or "")[:19].replace("T", " ")


def session_header(session: dict[str, Any]) -> Text:
    text = Text(session.get("title") or "(untitled)", style="bold")
    text.append(f"  {session.get('id')}  {session.get('messageCount', 0)} messages  "
                f"{session.get('promptTokens', 0)}/{session.get('completionTokens', 0)} tokens  "
                f"${session.get('cost') or 0:.4f}  updated {_short_time(session.get('updatedAt'))}", style="dim")
    return text


def render_transcript(messages: list[dict[str, Any]]) -> list[RenderableType]:
    """Stored Messages (PROTOCOL section 6) as the live view showed them: each tool call
    with its result (which is stored in a separate tool message)."""
    results = {part.get("toolCallId"): part for message in messages for part in message.get("parts", [])
               if part.get("type") == "tool_result"}
    calls = {part.get("id") for message in messages for part in message.get("parts", [])
             if part.get("type") == "tool_call"}
    shown: list[RenderableType | None] = []
    for message in messages:
        if message.get("role") == "user" and shown:
            shown.append(Text(""))
        shown += [_render_part(part, message.get("role"), results) for part in message.get("parts", [])
                  if not (part.get("type") == "tool_result" and part.get("toolCallId") in calls)]
    return [part for part in shown if part is not None]


def _render_part(part: dict[str, Any], role: str | None, results: dict[Any, dict[str, Any]]) -> RenderableType | None:
    kind = part.get("type")
    if kind == "text":
        return Text("❯ " + part.get("text", ""), style="bold") if role == "user" else Markdown(part.get("text", ""))
    if kind == "reasoning":
        return Text(part.get("text", "").strip(), style="dim italic")
    if kind == "tool_call":
        block = ToolBlock(part.get("id", ""), part.get("name", ""), part.get("input"),
                          part.get("status") or "completed")
        block.result = results.get(part.get("id"))
        return block.render()
    if kind == "tool_result":  # a result whose call is not in the session
        return Group(Text(f"↳ {part.get('name', '')}", style="dim"), *render_tool_result(part))
    if kind == "context":
        return Text(f"[{part.get('kind')} {context_place(part)}]", style="dim")
    if kind == "binary":
        return Text(f"[attachment {part.get('path') or ''} {part.get('mimeType', '')}]", style="dim")
    if kind == "finish" and part.get("reason") not in (None, "end_turn", "tool_use"):
        style = FINISH_STYLES.get(part["reason"], "yellow")
        return Text(f"── {part['reason']} {part.get('message') or ''}".rstrip(), style=style)
    return None


def context_place(part: dict[str, Any]) -> str:
    """Where an editor context part is from: `app.py`, or `app.py:3-4` for a selection (one-based lines)."""
    place = str(part.get("path") or part.get("uri") or "")
    r = part.get("range")
    if part.get("kind") == "selection" and isinstance(r, dict):
        first, last = range_lines(r)
        place += f":{first + 1}-{last + 1}"
    return place
