"""A fake Anthropic Messages server: `event: <type>` / `data: {...}` SSE events.

    with FakeAnthropic([text_stream("Hello"), Status(529, overloaded())]) as server:
        config = ModelConfig(provider="anthropic", model="claude-test", base_url=server.base_url, api_key="k")

Events are dicts with a `type`, written as `event: <type>\\ndata: <json>`.
"""

from __future__ import annotations

import json
from typing import Any

from .fake_vendor import Drop, FakeVendorServer, Hold, Status  # noqa: F401 - re-exported for tests

MODEL = "claude-test"


class FakeAnthropic(FakeVendorServer):
    def encode_event(self, event: dict[str, Any]) -> bytes:
        return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()

    @property
    def base_url(self) -> str:
        return self.origin  # the SDK adds /v1/messages

    def system_text(self, body: dict[str, Any]) -> str:
        system = body.get("system") or ""
        return system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)

    def text_response(self, text: str) -> list[dict[str, Any]]:
        return text_stream(text)


def message_start(input_tokens: int = 10, cache_read: int = 0, cache_write: int = 0) -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                  "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": cache_write}}}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, output_tokens: int) -> dict[str, Any]:
    return {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens}}


def message_stop() -> dict[str, Any]:
    return {"type": "message_stop"}


def text_block(index: int, *pieces: str) -> list[dict[str, Any]]:
    return ([block_start(index, {"type": "text", "text": ""})]
            + [block_delta(index, {"type": "text_delta", "text": p}) for p in pieces] + [block_stop(index)])


def thinking_block(index: int, *pieces: str, signature: str = "sig-fake") -> list[dict[str, Any]]:
    return ([block_start(index, {"type": "thinking", "thinking": ""})]
            + [block_delta(index, {"type": "thinking_delta", "thinking": p}) for p in pieces]
            + [block_delta(index, {"type": "signature_delta", "signature": signature}), block_stop(index)])


def tool_use_block(index: int, name: str, arguments: str, call_id: str = "toolu_1",
                   split: int = 8) -> list[dict[str, Any]]:
    deltas = [block_delta(index, {"type": "input_json_delta", "partial_json": arguments[i:i + split]})
              for i in range(0, len(arguments), split)]
    return [block_start(index, {"type": "tool_use", "id": call_id, "name": name, "input": {}}),
            *deltas, block_stop(index)]


def text_stream(*pieces: str, input_tokens: int = 10, output_tokens: int = 5,
                stop_reason: str = "end_turn") -> list[dict[str, Any]]:
    """The assistant says `pieces` in one text block."""
    return [message_start(input_tokens), *text_block(0, *pieces),
            message_delta(stop_reason, output_tokens), message_stop()]


def tool_use_stream(name: str, arguments: str, call_id: str = "toolu_1", *, text: str = "",
                    input_tokens: int = 20, output_tokens: int = 7) -> list[dict[str, Any]]:
    """Optional text, then one tool call whose JSON `arguments` arrive in pieces."""
    blocks = text_block(0, text) if text else []
    return [message_start(input_tokens), *blocks, *tool_use_block(1 if text else 0, name, arguments, call_id),
            message_delta("tool_use", output_tokens), message_stop()]


def error_body(message: str, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def overloaded() -> dict[str, Any]:
    return error_body("Overloaded", "overloaded_error")


def rate_limited() -> dict[str, Any]:
    return error_body("Number of request tokens has exceeded your per-minute rate limit", "rate_limit_error")


def context_too_long() -> dict[str, Any]:
    return error_body("prompt is too long: 210000 tokens > 200000 maximum")
