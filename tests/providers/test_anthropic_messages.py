"""The `anthropic` provider through the real SDK against a fake Messages server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crush_ls.protocol.errors import AgentNotInitialized
from crush_ls.providers import create_provider
from crush_ls.providers.base import (
    Finish,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from crush_ls.providers.history import MISSING_RESULT
from crush_ls.settings import ModelConfig
from tests.providers.fake_anthropic import (
    Drop,
    FakeAnthropic,
    Status,
    block_delta,
    block_start,
    block_stop,
    context_too_long,
    error_body,
    message_delta,
    message_start,
    message_stop,
    overloaded,
    rate_limited,
    text_block,
    text_stream,
    thinking_block,
    tool_use_block,
    tool_use_stream,
)
from tests.providers.provider_testing import call_with, collect, failure, user

KEY = "sk-ant-test-0123456789abcdef"
VIEW = ToolSpec("view", "Read a file", {"type": "object", "properties": {"file_path": {"type": "string"}}})
CACHED = {"type": "ephemeral"}


@pytest.fixture(autouse=True)
def no_cache_points(monkeypatch):
    """Request bodies without cache_control, except in the test about caching."""
    monkeypatch.setenv("CRUSH_DISABLE_ANTHROPIC_CACHE", "1")


def provider_for(server: FakeAnthropic, **overrides):
    config = ModelConfig(provider="anthropic", model="claude-test", base_url=server.base_url, api_key=KEY,
                         **overrides)
    return create_provider(config, Path("."))


async def test_streams_text_usage_and_finish():
    with FakeAnthropic([text_stream("Hel", "lo", input_tokens=12, output_tokens=4)]) as server:
        events = await collect(provider_for(server), call_with("say hello"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    assert [e for e in events if isinstance(e, Usage)][-1] == Usage(input_tokens=12, output_tokens=4)
    assert events[-1] == Finish("end_turn")
    body = server.requests[0]
    assert body["model"] == "claude-test"
    assert body["stream"] is True
    assert body["system"] == "You are a test."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "say hello"}]}]
    assert body["max_tokens"] == 4096  # an unknown model gets what every Claude model allows
    assert "tools" not in body and "thinking" not in body
    assert server.paths == ["/v1/messages"]
    headers = server.request_headers[0]  # the SDK's choice of header: x-api-key, or a bearer token
    assert headers.get("x-api-key") == KEY or headers.get("authorization") == f"Bearer {KEY}"


async def test_output_tokens_are_the_last_message_delta_not_a_sum():
    stream = [message_start(input_tokens=30, cache_read=5, cache_write=7), *text_block(0, "a"),
              message_delta("end_turn", 3), message_delta("end_turn", 11), message_stop()]
    with FakeAnthropic([stream]) as server:
        events = await collect(provider_for(server), call_with())
    assert [e for e in events if isinstance(e, Usage)][-1] == Usage(
        input_tokens=30, output_tokens=11, cache_read_tokens=5, cache_write_tokens=7)


async def test_tool_use_input_is_joined_from_json_deltas():
    arguments = json.dumps({"file_path": "src/app.py", "offset": 3})
    with FakeAnthropic([tool_use_stream("view", arguments, "toolu_9", text="Let me look.")]) as server:
        events = await collect(provider_for(server), call_with(tools=[VIEW]))
    assert [e for e in events if not isinstance(e, Usage)] == [
        TextDelta("Let me look."),
        ToolCallRequest(id="toolu_9", name="view", input={"file_path": "src/app.py", "offset": 3}),
        Finish("tool_use")]
    assert server.requests[0]["tools"] == [
        {"name": "view", "description": "Read a file", "input_schema": VIEW.parameters}]


async def test_broken_tool_input_becomes_an_input_error():
    with FakeAnthropic([tool_use_stream("view", '{"file_path": ')]) as server:
        events = await collect(provider_for(server), call_with(tools=[VIEW]))
    (call,) = [e for e in events if isinstance(e, ToolCallRequest)]
    assert call.input == {} and "not valid JSON" in call.input_error


async def test_thinking_streams_as_reasoning_with_its_signature():
    stream = [message_start(), *thinking_block(0, "Let me ", "think.", signature="sig-123"),
              *text_block(1, "Done."), message_delta("end_turn", 9), message_stop()]
    with FakeAnthropic([stream]) as server:
        events = await collect(provider_for(server, think=True, max_tokens=4000), call_with())
    assert [e for e in events if not isinstance(e, Usage)] == [
        ReasoningDelta("Let me "), ReasoningDelta("think."), ReasoningDelta("", signature="sig-123"),
        TextDelta("Done."), Finish("end_turn")]
    body = server.requests[0]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["max_tokens"] == 4000


async def test_history_is_translated_with_signed_thinking_and_merged_tool_results():
    history = [
        user("read two files"),
        {"role": "assistant", "parts": [
            {"type": "reasoning", "text": "two reads", "signature": "sig-1"},
            {"type": "text", "text": "Reading."},
            {"type": "tool_call", "id": "toolu_a", "name": "view", "input": {"file_path": "a"}, "status": "completed"},
            {"type": "tool_call", "id": "call.b", "name": "view", "input": {"file_path": "b"}, "status": "failed"},
            {"type": "tool_call", "id": "toolu_c", "name": "ls", "input": {}, "status": "canceled"},
            {"type": "finish", "reason": "tool_use", "time": "t"}]},
        {"role": "tool", "parts": [{"type": "tool_result", "toolCallId": "toolu_a", "name": "view",
                                    "content": "A", "isError": False}]},
        {"role": "tool", "parts": [{"type": "tool_result", "toolCallId": "call.b", "name": "view",
                                    "content": "no such file", "isError": True}]},
        {"role": "user", "parts": [{"type": "text", "text": "also this"},
                                   {"type": "binary", "path": "x.png", "mimeType": "image/png", "data": "iVBO"}]},
        {"role": "assistant", "parts": [{"type": "reasoning", "text": "unsigned thoughts"},
                                        {"type": "text", "text": "Ok."}]},
        user("thanks"),
    ]
    with FakeAnthropic([text_stream("ok")]) as server:
        await collect(provider_for(server), call_with(messages=history, system=""))
    body = server.requests[0]
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "read two files"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "two reads", "signature": "sig-1"},
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "toolu_a", "name": "view", "input": {"file_path": "a"}},
            {"type": "tool_use", "id": "call_b", "name": "view", "input": {"file_path": "b"}},
            {"type": "tool_use", "id": "toolu_c", "name": "ls", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "A"},
            {"type": "tool_result", "tool_use_id": "call_b", "content": "no such file", "is_error": True},
            {"type": "tool_result", "tool_use_id": "toolu_c", "content": MISSING_RESULT, "is_error": True},
            {"type": "text", "text": "also this"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Ok."}]},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]


async def test_cache_points_on_system_last_tool_and_last_two_messages(monkeypatch):
    monkeypatch.delenv("CRUSH_DISABLE_ANTHROPIC_CACHE")
    history = [user("one"), {"role": "assistant", "parts": [{"type": "text", "text": "two"}]}, user("three")]
    ls = ToolSpec("ls", "List", {"type": "object"})
    with FakeAnthropic([text_stream("ok")]) as server:
        await collect(provider_for(server), call_with(messages=history, tools=[VIEW, ls]))
    body = server.requests[0]
    assert body["system"] == [{"type": "text", "text": "You are a test.", "cache_control": CACHED}]
    assert "cache_control" not in body["tools"][0] and body["tools"][1]["cache_control"] == CACHED
    assert [m["content"][-1].get("cache_control") for m in body["messages"]] == [None, CACHED, CACHED]


@pytest.mark.parametrize(("status", "body", "code", "retryable"), [
    (529, overloaded(), "overloaded", True),
    (500, error_body("Internal", "api_error"), "server", True),
    (403, error_body("no", "permission_error"), "auth", False),
    (400, error_body("messages: field required"), "bad_request", False),
    (400, context_too_long(), "context_window_exceeded", False),
])
async def test_status_errors(status, body, code, retryable):
    with FakeAnthropic([Status(status, body)]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable, error.status) == (code, retryable, status)


async def test_rate_limit_carries_retry_after():
    with FakeAnthropic([Status(429, rate_limited(), {"retry-after": "7"})]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable, error.retry_after) == ("rate_limit", True, 7.0)
    assert "rate limit" in error.message


async def test_auth_error_never_shows_the_key():
    with FakeAnthropic([Status(401, error_body(f"invalid x-api-key {KEY}", "authentication_error"))]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable) == ("auth", False)
    assert KEY not in error.message and KEY not in str(error)


async def test_overloaded_error_event_in_the_middle_of_the_stream():
    stream = [message_start(), *text_block(0, "par"), {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}]
    with FakeAnthropic([stream]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable) == ("overloaded", True)


async def test_connection_dropped_mid_stream():
    stream = [message_start(), block_start(0, {"type": "text", "text": ""}),
              block_delta(0, {"type": "text_delta", "text": "partial"}), Drop()]
    with FakeAnthropic([stream]) as server:
        provider = provider_for(server)
        seen = []
        with pytest.raises(ProviderError) as info:
            async for event in provider.stream(call_with()):
                seen.append(event)
        await provider.aclose()
    assert TextDelta("partial") in seen
    assert (info.value.code, info.value.retryable) == ("connection", True)


async def test_stream_without_message_stop_is_a_connection_error():
    with FakeAnthropic([[message_start(), *text_block(0, "half"), block_stop(0)]]) as server:
        error = await failure(provider_for(server))
    assert error.code == "connection"


async def test_two_tool_calls_in_one_message():
    stream = [message_start(), *tool_use_block(0, "view", '{"file_path": "a"}', "toolu_1"),
              *tool_use_block(1, "ls", "", "toolu_2"), message_delta("tool_use", 5), message_stop()]
    with FakeAnthropic([stream]) as server:
        events = await collect(provider_for(server), call_with(tools=[VIEW]))
    assert [(e.id, e.input) for e in events if isinstance(e, ToolCallRequest)] == [
        ("toolu_1", {"file_path": "a"}), ("toolu_2", {})]


def test_model_info_defaults_and_missing_key(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(AgentNotInitialized, match="ANTHROPIC_API_KEY"):
        create_provider(ModelConfig(provider="anthropic"), Path("."))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    provider = create_provider(ModelConfig(provider="anthropic", model="claude-sonnet-4-5-20250929"), Path("."))
    info = provider.info
    assert (info.context_window, info.cost_per_1m_in, info.cost_per_1m_out, info.max_tokens) == (
        200_000, 3.0, 15.0, 8192)
    assert (info.cost_per_1m_in_cached, info.cost_per_1m_out_cached) == (3.75, 0.30)
    assert provider.max_retries == 3 and KEY not in repr(provider)


def test_creating_the_provider_does_not_import_the_sdk():
    code = ("import sys; from pathlib import Path; from crush_ls.settings import ModelConfig;"
            "from crush_ls.providers import create_provider;"
            "create_provider(ModelConfig(provider='anthropic', base_url='http://h'), Path('.'));"
            "print('anthropic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
