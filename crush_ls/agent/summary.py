"""What a summary is (Crush's): the request that asks the model for one, what it resets in the
session, and the prompt a turn goes on with after summarizing midway. The turn makes the call."""

from __future__ import annotations

from typing import Any

from ..providers.base import ModelCall
from ..storage import Message, Session, now
from .usage import RunUsage

SUMMARY_PROMPT = "Provide a detailed summary of our conversation above."
SUMMARY_SYSTEM = (
    "You summarize a coding conversation so that it can continue without the full history. "
    "Keep: the user's goals, decisions made, files read or changed (with paths), the current state, "
    "and what remains to do. Be specific and concise."
)
CONTINUE_AFTER_SUMMARY = (
    "The previous session was interrupted because it got too long, the initial user request was: `{prompt}`"
)


def summary_call(history: list[Message], session_id: str, max_tokens: int | None) -> ModelCall:
    """The model call that summarizes `history` (no tools)."""
    request = Message(id="summary-request", session_id=session_id, role="user",
                      parts=[{"type": "text", "text": SUMMARY_PROMPT}], created_at=now(), updated_at=now())
    return ModelCall(system=SUMMARY_SYSTEM, messages=[m.for_model() for m in history] + [request.for_model()],
                     tools=[], prompt=SUMMARY_PROMPT, step=0, max_tokens=max_tokens)


def summarized(session: Session, summary: Message, usage: RunUsage) -> None:
    """The session's history starts from `summary`; its context is the summary's size."""
    session.summary_message_id = summary.id
    session.prompt_tokens = 0
    session.completion_tokens = usage.output_tokens or len(summary.text()) // 4


def continuation_parts(prompt: str) -> list[dict[str, Any]]:
    """The user message a turn summarized midway goes on with: the original request."""
    return [{"type": "text", "text": CONTINUE_AFTER_SUMMARY.format(prompt=prompt)}]
