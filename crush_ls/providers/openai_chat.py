"""`openai`: Chat Completions streaming through the official `openai` SDK.

Works with OpenAI itself and every server that speaks its API (Ollama, vLLM,
llama.cpp server, LM Studio, OpenRouter, ...): `model.baseUrl` includes the
version path, e.g. `http://localhost:11434/v1`. The SDK never retries
(`max_retries=0`); the turn loop does, so that each retry is announced.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..settings import ModelConfig
from .base import (
    END_TURN,
    TOOL_USE,
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
from .history import AssistantTurn, ToolResults, UserTurn, binary_note, conversation, result_text
from .sdk import SdkProvider, api_key_for, given, known_model, parse_tool_input

DEFAULT_MODEL = "gpt-4.1-mini"
# Context window and $ per million tokens (input, output, cached input read)
# of OpenAI's own models, for when crush.json does not say.
_KNOWN_MODELS = {
    "gpt-4o-mini": (128_000, 0.15, 0.60, 0.075),
    "gpt-4o": (128_000, 2.50, 10.00, 1.25),
    "gpt-4.1-nano": (1_047_576, 0.10, 0.40, 0.025),
    "gpt-4.1-mini": (1_047_576, 0.40, 1.60, 0.10),
    "gpt-4.1": (1_047_576, 2.00, 8.00, 0.50),
    "o4-mini": (200_000, 1.10, 4.40, 0.275),
    "o3": (200_000, 2.00, 8.00, 0.50),
    "gpt-5-nano": (400_000, 0.05, 0.40, 0.005),
    "gpt-5-mini": (400_000, 0.25, 2.00, 0.025),
    "gpt-5": (400_000, 1.25, 10.00, 0.125),
}
OFFICIAL_CONTEXT_WINDOW = 128_000
# Local servers are often started with small contexts; 32k is a middle ground
# until crush.json's context_window or model.contextWindow says otherwise.
COMPATIBLE_CONTEXT_WINDOW = 32_768


def is_official(base_url: str | None) -> bool:
    return not base_url or "api.openai.com" in base_url


def model_info(config: ModelConfig) -> ModelInfo:
    model = config.model or DEFAULT_MODEL
    official = is_official(config.base_url)
    known = known_model(_KNOWN_MODELS, model) if official else None
    window, cost_in, cost_out, cost_cached = known or (
        OFFICIAL_CONTEXT_WINDOW if official else COMPATIBLE_CONTEXT_WINDOW, 0.0, 0.0, 0.0)
    return ModelInfo(
        provider="openai",
        model=model,
        name=config.name or model,
        context_window=config.context_window or window,
        supports_tools=True if config.supports_tools is None else config.supports_tools,
        max_tokens=config.max_tokens,
        cost_per_1m_in=given(config.cost_per_1m_in, cost_in),
        cost_per_1m_out=given(config.cost_per_1m_out, cost_out),
        cost_per_1m_in_cached=given(config.cost_per_1m_in_cached, 0.0),
        cost_per_1m_out_cached=given(config.cost_per_1m_out_cached, cost_cached),
    )


# --- request -------------------------------------------------------------------


def openai_messages(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our stored messages as Chat Completions messages."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in conversation(messages):
        if isinstance(turn, UserTurn):
            out.append({"role": "user", "content": _user_content(turn.parts)})
        elif isinstance(turn, AssistantTurn):
            out.append(_assistant_message(turn))
        elif isinstance(turn, ToolResults):
            out.extend(
                {"role": "tool", "tool_call_id": str(r["toolCallId"]), "content": result_text(r)}
                for r in turn.results
            )
    return out


def _user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # Plain text stays a string: some compatible servers accept nothing else.
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    content: list[dict[str, Any]] = []
    for part in parts:
        if part["type"] == "text":
            content.append({"type": "text", "text": part["text"]})
        elif str(part.get("mimeType", "")).startswith("image/"):
            url = f"data:{part['mimeType']};base64,{part['data']}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        else:
            content.append({"type": "text", "text": binary_note(part)})
    return content


def _assistant_message(turn: AssistantTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": str(call["id"]), "type": "function",
             "function": {"name": call["name"], "arguments": _arguments(call.get("input"))}}
            for call in turn.tool_calls
        ]
    return message


def _arguments(value: Any) -> str:
    return json.dumps(value if isinstance(value, dict) else {})


def openai_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {"type": "function",
         "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


# --- streaming -----------------------------------------------------------------


class _ToolCallBuffer:
    """Tool-call deltas of one stream, joined by their index."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, delta: Any) -> None:
        call = self.calls.setdefault(self._index(delta), {"id": "", "name": "", "arguments": ""})
        if delta.id:
            call["id"] = delta.id
        function = delta.function
        if function is not None:
            call["name"] += function.name or ""
            call["arguments"] += function.arguments or ""

    def _index(self, delta: Any) -> int:
        if delta.index is not None:
            return int(delta.index)
        # Some servers leave the index out and send each call whole: a new id is a new call.
        for index, call in self.calls.items():
            if delta.id and call["id"] == delta.id:
                return index
        if delta.id or not self.calls:
            return len(self.calls)
        return max(self.calls)

    def requests(self) -> list[ToolCallRequest]:
        out = []
        for _, call in sorted(self.calls.items()):
            arguments, error = parse_tool_input(call["arguments"])
            out.append(ToolCallRequest(id=call["id"] or f"call_{uuid.uuid4().hex[:24]}",
                                       name=call["name"], input=arguments, input_error=error))
        return out


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    prompt = usage.prompt_tokens or 0
    return Usage(input_tokens=max(prompt - cached, 0), output_tokens=usage.completion_tokens or 0,
                 cache_read_tokens=cached)


def _reasoning_text(delta: Any) -> str | None:
    # Not part of OpenAI's API, but how vLLM, Ollama, llama.cpp, LM Studio,
    # OpenRouter and DeepSeek stream a reasoning model's thoughts.
    for name in ("reasoning_content", "reasoning"):
        value = getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return None


class OpenAIChatProvider(SdkProvider):
    vendor = "openai"
    label = "OpenAI"
    client_class = "AsyncOpenAI"

    def __init__(self, config: ModelConfig, api_key: str | None) -> None:
        super().__init__(model_info(config), config.base_url, api_key)

    def request(self, call: ModelCall) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.info.model,
            "messages": openai_messages(call.system, call.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if call.tools:
            body["tools"] = openai_tools(call.tools)
        max_tokens = call.max_tokens or self.info.max_tokens
        if max_tokens:
            # OpenAI's reasoning models refuse max_tokens; many compatible servers only know it.
            body["max_completion_tokens" if is_official(self.base_url) else "max_tokens"] = max_tokens
        return body

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        tool_calls = _ToolCallBuffer()
        finish: str | None = None
        async with await self._sdk().chat.completions.create(**body) as chunks:
            async for chunk in chunks:
                if chunk.usage is not None:
                    yield _usage(chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None:
                        reasoning = _reasoning_text(delta)
                        if reasoning:
                            yield ReasoningDelta(reasoning)
                        if delta.content:
                            yield TextDelta(delta.content)
                        for tool_delta in delta.tool_calls or []:
                            tool_calls.add(tool_delta)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        if finish is None:
            raise ProviderError("OpenAI API: the stream ended before the model finished", code="connection")
        requests = tool_calls.requests()
        for request in requests:
            yield request
        reason = map_stop_reason(finish)
        # Some compatible servers end a step with tool calls as "stop".
        yield Finish(TOOL_USE if requests and reason == END_TURN else reason)


def create(config: ModelConfig, workspace_root: Path) -> OpenAIChatProvider:
    key = api_key_for(config, "OpenAI", "OPENAI_API_KEY", official=is_official(config.base_url))
    return OpenAIChatProvider(config, key)
