"""What a model provider is to the agent: one model call in, a stream of events out.

A provider knows one vendor's wire format and nothing about sessions, runs or
the protocol. The turn loop (crush_ls.agent.turn) owns retries, usage sums,
storage and notifications; a provider only translates.

Contract for ``Provider.stream``:
- yields ``TextDelta`` / ``ReasoningDelta`` as they arrive, ``ToolCallRequest``
  once per complete tool call, ``Usage`` with the call's *cumulative* totals
  (the loop keeps the last one of a call), and ends with exactly one ``Finish``;
- raises ``ProviderError`` (with a stable ``code``) for every failure; other
  exceptions are treated as ``internal``;
- is cancelled with ``asyncio`` cancellation and must stop promptly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import attrs

# Stable finish reasons of a model call (PROTOCOL section 3).
END_TURN = "end_turn"
MAX_TOKENS = "max_tokens"
TOOL_USE = "tool_use"
CONTENT_FILTER = "content_filter"
UNKNOWN = "unknown"

_VENDOR_STOP_REASONS = {
    "stop": END_TURN,
    "end_turn": END_TURN,
    "stop_sequence": END_TURN,
    "length": MAX_TOKENS,
    "max_tokens": MAX_TOKENS,
    "tool_calls": TOOL_USE,
    "function_call": TOOL_USE,
    "tool_use": TOOL_USE,
    "content_filter": CONTENT_FILTER,
    "refusal": CONTENT_FILTER,
}


def map_stop_reason(vendor_reason: str | None) -> str:
    """Map an OpenAI or Anthropic stop reason to our finish reason."""
    return _VENDOR_STOP_REASONS.get(vendor_reason or "", UNKNOWN)


@attrs.frozen
class ModelInfo:
    """A model as the agent and `agent/models` see it."""

    provider: str
    model: str
    name: str = ""
    context_window: int = 0
    supports_tools: bool = True
    max_tokens: int | None = None
    cost_per_1m_in: float = 0.0
    cost_per_1m_out: float = 0.0
    cost_per_1m_in_cached: float = 0.0
    cost_per_1m_out_cached: float = 0.0



@attrs.frozen
class ToolSpec:
    """A tool offered to the model through the vendor's function calling."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the input object


@attrs.frozen
class ModelCall:
    """Everything one model call needs.

    ``messages`` are the session's stored messages as dicts with ``role`` and
    ``parts`` (parts in wire form, PROTOCOL section 6); providers translate
    them into their vendor's format. ``prompt`` and ``step`` let the scripted
    provider pick its response.
    """

    system: str
    messages: list[dict[str, Any]]
    tools: list[ToolSpec]
    prompt: str = ""
    step: int = 0
    max_tokens: int | None = None


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ReasoningDelta:
    text: str
    signature: str | None = None  # Anthropic thinking signature, kept for replay


@attrs.frozen
class ToolCallRequest:
    id: str
    name: str
    input: dict[str, Any]
    # Set when the model sent arguments that are not a JSON object: the call
    # still gets a result, an error the model can read.
    input_error: str | None = None


@attrs.frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@attrs.frozen
class Finish:
    reason: str  # one of END_TURN, MAX_TOKENS, TOOL_USE, CONTENT_FILTER, UNKNOWN


StreamEvent = TextDelta | ReasoningDelta | ToolCallRequest | Usage | Finish

# agent_error codes (PROTOCOL section 3).
RETRYABLE_CODES = frozenset({"rate_limit", "overloaded", "server", "connection"})


class ProviderError(Exception):
    """A failed model call, classified for `agent_error`.

    ``code`` is one of auth, rate_limit, overloaded, server, connection,
    context_window_exceeded, bad_request, internal. The message must never
    contain an API key.
    """

    def __init__(
        self,
        message: str,
        code: str = "internal",
        retryable: bool | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = code in RETRYABLE_CODES if retryable is None else retryable
        self.status = status
        self.retry_after = retry_after


def error_code_for_status(status: int, body: str = "") -> str:
    """Classify an HTTP status (and body hints) into an agent_error code."""
    lowered = body.lower()
    if "context" in lowered and ("window" in lowered or "length" in lowered or "too long" in lowered):
        return "context_window_exceeded"
    if "prompt is too long" in lowered or "maximum context" in lowered:
        return "context_window_exceeded"
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status in (503, 529):
        return "overloaded"
    if status >= 500:
        return "server"
    if status >= 400:
        return "bad_request"
    return "internal"


class Provider(Protocol):
    """One configured model."""

    info: ModelInfo
    # How many times the turn loop may retry a retryable error of one call.
    max_retries: int

    def stream(self, call: ModelCall) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
