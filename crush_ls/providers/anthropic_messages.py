"""`anthropic`: Messages streaming through the official `anthropic` SDK.

Tool use, extended thinking (when `model.think` is set; thinking blocks are
replayed with their signatures) and prompt caching as Crush does it. The
SDK never retries (`max_retries=0`): the turn loop does, so that each retry
is announced. `model.baseUrl` has no version path (`http://host:port`).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..settings import ModelConfig
from .base import (
    Finish,
    ModelCall,
    ModelInfo,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    Usage,
    map_stop_reason,
)
from .history import AssistantTurn, UserTurn, binary_note, conversation, result_text
from .sdk import SdkProvider, api_key_for, given, known_model, parse_tool_input

DEFAULT_MODEL = "claude-sonnet-4-5"
# Context window, $ per million tokens (input, output, cache write, cache
# read) and largest output of Anthropic's models, for when crush.json does not say.
_KNOWN_MODELS = {
    "claude-opus-4": (200_000, 15.0, 75.0, 18.75, 1.50, 32_000),
    "claude-opus-4-1": (200_000, 15.0, 75.0, 18.75, 1.50, 32_000),
    "claude-sonnet-4": (200_000, 3.0, 15.0, 3.75, 0.30, 64_000),
    "claude-sonnet-4-5": (200_000, 3.0, 15.0, 3.75, 0.30, 64_000),
    "claude-3-7-sonnet": (200_000, 3.0, 15.0, 3.75, 0.30, 64_000),
    "claude-3-5-sonnet": (200_000, 3.0, 15.0, 3.75, 0.30, 8_192),
    "claude-haiku-4-5": (200_000, 1.0, 5.0, 1.25, 0.10, 64_000),
    "claude-3-5-haiku": (200_000, 0.80, 4.0, 1.0, 0.08, 8_192),
    "claude-3-haiku": (200_000, 0.25, 1.25, 0.30, 0.03, 4_096),
}
DEFAULT_CONTEXT_WINDOW = 200_000
DEFAULT_MAX_TOKENS = 8_192
UNKNOWN_MODEL_MAX_TOKENS = 4_096  # every Claude model allows this much output
MIN_THINKING_BUDGET = 1_024  # Anthropic's minimum
_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")
EPHEMERAL = {"type": "ephemeral"}


def is_official(base_url: str | None) -> bool:
    return not base_url or "api.anthropic.com" in base_url


def model_info(config: ModelConfig) -> ModelInfo:
    model = config.model or DEFAULT_MODEL
    known = known_model(_KNOWN_MODELS, model)  # ids carry dates: claude-sonnet-4-5-20250929
    window, cost_in, cost_out, cost_write, cost_read, max_out = known or (
        DEFAULT_CONTEXT_WINDOW, 0.0, 0.0, 0.0, 0.0, UNKNOWN_MODEL_MAX_TOKENS)
    if not is_official(config.base_url):  # another service's prices are unknown
        cost_in = cost_out = cost_write = cost_read = 0.0
    return ModelInfo(
        provider="anthropic",
        model=model,
        name=config.name or model,
        context_window=config.context_window or window,
        supports_tools=True if config.supports_tools is None else config.supports_tools,
        max_tokens=config.max_tokens or min(max_out, DEFAULT_MAX_TOKENS),
        cost_per_1m_in=given(config.cost_per_1m_in, cost_in),
        cost_per_1m_out=given(config.cost_per_1m_out, cost_out),
        # Crush's (catwalk's) convention: "in cached" is the cache write price, "out cached" the read price.
        cost_per_1m_in_cached=given(config.cost_per_1m_in_cached, cost_write),
        cost_per_1m_out_cached=given(config.cost_per_1m_out_cached, cost_read),
    )


# --- request -------------------------------------------------------------------


def tool_id(value: Any) -> str:
    """Anthropic only takes [a-zA-Z0-9_-] ids; calls made by other providers may have others."""
    return _TOOL_ID.sub("_", str(value)) or "call"


def anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our stored messages as Messages API messages.

    Tool results (and a user prompt that follows them) share one user
    message, results first, as the API requires.
    """
    out: list[dict[str, Any]] = []
    for turn in conversation(messages):
        if isinstance(turn, UserTurn):
            role, blocks = "user", [_user_block(p) for p in turn.parts]
        elif isinstance(turn, AssistantTurn):
            role, blocks = "assistant", _assistant_blocks(turn)
        else:
            role, blocks = "user", [_result_block(r) for r in turn.results]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _user_block(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    mime = str(part.get("mimeType") or "")
    source = {"type": "base64", "media_type": mime, "data": part["data"]}
    if mime in ("image/jpeg", "image/png", "image/gif", "image/webp"):
        return {"type": "image", "source": source}
    if mime == "application/pdf":
        return {"type": "document", "source": source}
    return {"type": "text", "text": binary_note(part)}


def _assistant_blocks(turn: AssistantTurn) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in turn.parts:
        if part["type"] == "reasoning":
            # Only signed thinking can be sent back; thoughts of other models are left out.
            if part.get("signature"):
                blocks.append({"type": "thinking", "thinking": part.get("text") or "",
                               "signature": part["signature"]})
        elif part["type"] == "text":
            blocks.append({"type": "text", "text": part["text"]})
        else:
            value = part.get("input")
            blocks.append({"type": "tool_use", "id": tool_id(part["id"]), "name": part["name"],
                           "input": value if isinstance(value, dict) else {}})
    return blocks


def _result_block(result: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(result["toolCallId"])}
    text = result_text(result)
    if text:
        block["content"] = text
    if result.get("isError"):
        block["is_error"] = True
    return block


def anthropic_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def add_cache_points(body: dict[str, Any]) -> None:
    """Cache the system prompt, the tools and the last two messages, as Crush does.

    `CRUSH_DISABLE_ANTHROPIC_CACHE` turns it off (Crush's switch).
    """
    if os.environ.get("CRUSH_DISABLE_ANTHROPIC_CACHE"):
        return
    if body.get("system"):
        body["system"] = [{"type": "text", "text": body["system"], "cache_control": EPHEMERAL}]
    if body.get("tools"):
        body["tools"][-1]["cache_control"] = EPHEMERAL
    for message in body["messages"][-2:]:
        cacheable = [b for b in message["content"] if b["type"] not in ("thinking", "redacted_thinking")]
        if cacheable:
            cacheable[-1]["cache_control"] = EPHEMERAL


# --- streaming -----------------------------------------------------------------


class _Call:
    """What one stream has said so far: open blocks, usage, stop reason."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage = Usage()
        self.stop_reason: str | None = None
        self.stopped = False

    def update_usage(self, usage: Any) -> Usage:
        # message_delta carries cumulative counts; fields it leaves out keep their value.
        def pick(name: str, current: int) -> int:
            value = getattr(usage, name, None)
            return current if value is None else value

        self.usage = Usage(
            input_tokens=pick("input_tokens", self.usage.input_tokens),
            output_tokens=pick("output_tokens", self.usage.output_tokens),
            cache_read_tokens=pick("cache_read_input_tokens", self.usage.cache_read_tokens),
            cache_write_tokens=pick("cache_creation_input_tokens", self.usage.cache_write_tokens),
        )
        return self.usage


class AnthropicMessagesProvider(SdkProvider):
    vendor = "anthropic"
    label = "Anthropic"
    client_class = "AsyncAnthropic"

    def __init__(self, config: ModelConfig, api_key: str | None) -> None:
        super().__init__(model_info(config), config.base_url, api_key)
        self.think = bool(config.think)

    def request(self, call: ModelCall) -> dict[str, Any]:
        max_tokens = call.max_tokens or self.info.max_tokens or UNKNOWN_MODEL_MAX_TOKENS
        body: dict[str, Any] = {"model": self.info.model, "max_tokens": max_tokens,
                                "messages": anthropic_messages(call.messages), "stream": True}
        if call.system:
            body["system"] = call.system
        if call.tools:
            body["tools"] = anthropic_tools(call.tools)
        if self.think:
            budget = max(MIN_THINKING_BUDGET, max_tokens // 2)
            body["max_tokens"] = max(max_tokens, budget + MIN_THINKING_BUDGET)  # the answer needs room too
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        add_cache_points(body)
        return body

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        state = _Call()
        async with await self._sdk().messages.create(**body) as events:
            async for event in events:
                for out in _translate(event, state):
                    yield out
        if not state.stopped:
            raise ProviderError("Anthropic API: the stream ended before the model finished", code="connection")
        yield Finish(map_stop_reason(state.stop_reason))


def _translate(event: Any, state: _Call) -> list[StreamEvent]:
    """Our events for one Messages stream event."""
    kind = event.type
    if kind == "message_start":
        return [state.update_usage(event.message.usage)]
    if kind == "content_block_start":
        return _block_start(event.index, event.content_block, state)
    if kind == "content_block_delta":
        return _block_delta(event.index, event.delta, state)
    if kind == "content_block_stop":
        block = state.blocks.pop(event.index, None)
        if block is not None and block["type"] == "tool_use":
            value, error = parse_tool_input(block["json"])
            return [ToolCallRequest(id=block["id"], name=block["name"], input=value, input_error=error)]
        return []
    if kind == "message_delta":
        state.stop_reason = event.delta.stop_reason or state.stop_reason
        return [state.update_usage(event.usage)] if event.usage is not None else []
    if kind == "message_stop":
        state.stopped = True
    return []


def _block_start(index: int, block: Any, state: _Call) -> list[StreamEvent]:
    state.blocks[index] = {"type": block.type, "id": getattr(block, "id", ""),
                           "name": getattr(block, "name", ""), "json": ""}
    if block.type == "text" and block.text:
        return [TextDelta(block.text)]
    if block.type == "thinking" and block.thinking:
        return [ReasoningDelta(block.thinking)]
    return []


def _block_delta(index: int, delta: Any, state: _Call) -> list[StreamEvent]:
    if delta.type == "text_delta":
        return [TextDelta(delta.text)] if delta.text else []
    if delta.type == "thinking_delta":
        return [ReasoningDelta(delta.thinking)] if delta.thinking else []
    if delta.type == "signature_delta":
        return [ReasoningDelta("", signature=delta.signature)]
    if delta.type == "input_json_delta":
        block = state.blocks.get(index)
        if block is not None:
            block["json"] += delta.partial_json or ""
    return []


def create(config: ModelConfig, workspace_root: Path) -> AnthropicMessagesProvider:
    key = api_key_for(config, "Anthropic", "ANTHROPIC_API_KEY", official=is_official(config.base_url))
    return AnthropicMessagesProvider(config, key)
