"""Asking a person on the terminal: permission decisions and, in the loop, prompts.

prompt_toolkit is imported only here and only when a question is asked, so a
one-shot `crush-ls chat "..."` that needs no decision starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:  # prompt_toolkit stays unimported until a question is asked
    from prompt_toolkit.history import History
    from prompt_toolkit.key_binding import KeyPressEvent
    from prompt_toolkit.output import Output

INTERRUPTED = "interrupted"  # Ctrl-C at the question: deny and cancel the turn
KEYS = {"y": "allow", "a": "allow_session", "n": "deny", "d": "deny"}
INPUT_PREVIEW_CHARS = 400


def describe_permission(permission: dict[str, Any]) -> Text:
    text = Text()
    text.append("Permission needed: ", style="bold yellow")
    text.append(f"{permission.get('tool')} wants to {permission.get('action')}")
    if permission.get("path"):
        text.append(f" {permission['path']}", style="cyan")
    if permission.get("description"):
        text.append(f"\n  {permission['description']}", style="dim")
    tool_input = permission.get("input")
    if tool_input:
        shown = json.dumps(tool_input, ensure_ascii=False, indent=None)
        if len(shown) > INPUT_PREVIEW_CHARS:
            shown = shown[: INPUT_PREVIEW_CHARS - 1] + "…"
        text.append(f"\n  {shown}", style="dim")
    return text


def _output(console: Console) -> Output:
    from prompt_toolkit.output import create_output

    # With --json, or stdout in a pipe, questions go to stderr with the console's text.
    return create_output(stdout=sys.stderr if console.stderr else sys.stdout)


async def ask_permission(permission: dict[str, Any], console: Console) -> str:
    """`allow`, `allow_session`, `deny`, or INTERRUPTED; one key press, no Enter needed."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings

    console.print(describe_permission(permission))
    bindings = KeyBindings()

    def answer(decision: str) -> Callable[[KeyPressEvent], None]:
        def handler(event: KeyPressEvent) -> None:
            event.app.exit(result=decision)
        return handler

    for key, decision in KEYS.items():
        bindings.add(key)(answer(decision))
        bindings.add(key.upper())(answer(decision))
    bindings.add("escape", eager=True)(answer("deny"))
    bindings.add("c-c")(answer(INTERRUPTED))
    bindings.add("enter")(lambda event: None)  # a stray Enter must not count as an answer
    session: PromptSession[str] = PromptSession(key_bindings=bindings, output=_output(console))
    decision = await session.prompt_async(
        "  [y] allow  [a] allow for this session  [n] deny > ", handle_sigint=False
    )
    shown = "deny, and cancel the turn" if decision == INTERRUPTED else decision
    console.print(Text(f"  → {shown}", style="dim"))
    return decision


def history_path() -> Path:
    import os

    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "crush-ls" / "chat-history"


class PromptReader:
    """The interactive loop's input line: history, multi-line with Esc-Enter or a trailing backslash."""

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        bindings = KeyBindings()

        @bindings.add("enter")
        def _submit_or_continue(event: KeyPressEvent) -> None:
            buffer = event.current_buffer
            if buffer.text.endswith("\\"):
                buffer.delete_before_cursor(1)
                buffer.insert_text("\n")
            else:
                buffer.validate_and_handle()

        @bindings.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        @bindings.add("c-c")
        def _clear_or_quit(event: KeyPressEvent) -> None:
            # Ctrl-C clears a half-typed prompt; on an empty line it leaves the loop.
            if event.current_buffer.text:
                event.current_buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt)

        path = history_path()
        history: History
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(path))
        except OSError:
            history = InMemoryHistory()
        self._session: PromptSession[str] = PromptSession(
            history=history, key_bindings=bindings, multiline=True,
            prompt_continuation=lambda width, line, wrap: "… ".rjust(width),
        )

    async def read(self) -> str:
        """The next prompt; raises EOFError on Ctrl-D and KeyboardInterrupt on Ctrl-C at an empty line."""
        return await self._session.prompt_async("❯ ", handle_sigint=False)
