"""A fake OpenAI Chat Completions server: `chat.completion.chunk` SSE events.

    from tests.providers.fake_openai import FakeOpenAI, Status, rate_limited, text_stream

    with FakeOpenAI([Status(429, rate_limited(), {"retry-after": "0"}), text_stream("Hello")]) as server:
        config = ModelConfig(provider="openai", model="gpt-test", base_url=server.base_url, api_key="sk-test")

Every stream ends with `data: [DONE]` unless it was cut with `Drop()`.
"""

from __future__ import annotations

import json
from typing import Any

from .fake_vendor import Drop, FakeVendorServer, Hold, Status  # noqa: F401 - re-exported for tests

MODEL = "gpt-test"


class FakeOpenAI(FakeVendorServer):
    def encode_event(self, event: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(event)}\n\n".encode()

    def end_of_stream(self) -> bytes:
        return b"data: [DONE]\n\n"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def system_text(self, body: dict[str, Any]) -> str:
        return " ".join(str(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "system")

    def text_response(self, text: str) -> list[dict[str, Any]]:
        return text_stream(text)


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None,
          usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """One `chat.completion.chunk`; no delta and no finish reason means no choices (the usage chunk)."""
    body: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
                            "model": MODEL, "choices": []}
    if delta is not None or finish_reason is not None:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]
    if usage is not None:
        body["usage"] = usage
    return body


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def text_stream(*pieces: str, finish_reason: str = "stop", prompt_tokens: int = 10,
                completion_tokens: int = 5) -> list[dict[str, Any]]:
    """The assistant says `pieces`, one chunk each, then a finish and a usage chunk."""
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk(finish_reason=finish_reason))
    events.append(chunk(usage=usage(prompt_tokens, completion_tokens)))
    return events


def tool_call_stream(name: str, arguments: str, call_id: str = "call_1", *, text: str = "",
                     split: int = 8, prompt_tokens: int = 20, completion_tokens: int = 7) -> list[dict[str, Any]]:
    """One tool call whose `arguments` (a JSON string) arrive in pieces of `split` characters."""
    events = [chunk({"role": "assistant", "content": text or None})]
    events.append(chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                         "function": {"name": name, "arguments": ""}}]}))
    for start in range(0, len(arguments), split):
        piece = arguments[start:start + split]
        events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    events.append(chunk(finish_reason="tool_calls"))
    events.append(chunk(usage=usage(prompt_tokens, completion_tokens)))
    return events


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def rate_limited() -> dict[str, Any]:
    return error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")


def context_too_long() -> dict[str, Any]:
    return error_body("This model's maximum context length is 8192 tokens. However, your messages "
                      "resulted in 9000 tokens.", code="context_length_exceeded")
