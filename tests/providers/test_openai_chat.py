"""The `openai` provider through the real SDK against a fake Chat Completions server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
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
from tests.providers.fake_openai import (
    Drop,
    FakeOpenAI,
    Hold,
    Status,
    chunk,
    context_too_long,
    error_body,
    rate_limited,
    text_stream,
    tool_call_stream,
    usage,
)
from tests.providers.provider_testing import call_with, collect, failure, user

KEY = "sk-test-0123456789abcdef"
VIEW = ToolSpec("view", "Read a file", {"type": "object", "properties": {"file_path": {"type": "string"}},
                                        "required": ["file_path"]})


def provider_for(server: FakeOpenAI, **overrides):
    config = ModelConfig(provider="openai", model="gpt-test", base_url=server.base_url, api_key=KEY,
                         **overrides)
    return create_provider(config, Path("."))


async def test_streams_text_usage_and_finish():
    with FakeOpenAI([text_stream("Hel", "lo", " world", prompt_tokens=12, completion_tokens=3)]) as server:
        events = await collect(provider_for(server), call_with("say hello"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", " world"]
    assert [e for e in events if isinstance(e, Usage)] == [Usage(input_tokens=12, output_tokens=3)]
    assert events[-1] == Finish("end_turn")
    body = server.requests[0]
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "system", "content": "You are a test."},
                                {"role": "user", "content": "say hello"}]
    assert "tools" not in body
    assert server.paths == ["/v1/chat/completions"]
    assert server.request_headers[0]["authorization"] == f"Bearer {KEY}"


async def test_tool_call_arguments_are_joined_from_deltas():
    arguments = json.dumps({"file_path": "src/main.py", "limit": 20})
    with FakeOpenAI([tool_call_stream("view", arguments, "call_abc", split=5)]) as server:
        events = await collect(provider_for(server), call_with(tools=[VIEW]))
    assert [e for e in events if isinstance(e, ToolCallRequest)] == [
        ToolCallRequest(id="call_abc", name="view", input={"file_path": "src/main.py", "limit": 20})]
    assert events[-1] == Finish("tool_use")
    assert server.requests[0]["tools"] == [{"type": "function", "function": {
        "name": "view", "description": "Read a file", "parameters": VIEW.parameters}}]


async def test_two_parallel_tool_calls_keep_their_index_order():
    stream = [
        chunk({"role": "assistant", "tool_calls": [
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "view", "arguments": '{"file_path"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "a"}'}}]}),
        chunk(finish_reason="tool_calls"),
    ]
    with FakeOpenAI([stream]) as server:
        events = await collect(provider_for(server), call_with(tools=[VIEW]))
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert [(c.id, c.name, c.input) for c in calls] == [("call_a", "view", {"file_path": "a"}),
                                                       ("call_b", "ls", {})]


async def test_arguments_that_are_not_a_json_object_become_an_input_error():
    with FakeOpenAI([tool_call_stream("view", '{"file_path": "a"', "c1"),
                     tool_call_stream("view", '["a"]', "c2")]) as server:
        broken = await collect(provider_for(server), call_with(tools=[VIEW]))
        not_object = await collect(provider_for(server), call_with(tools=[VIEW]))
    (call,) = [e for e in broken if isinstance(e, ToolCallRequest)]
    assert call.input == {} and "not valid JSON" in call.input_error
    (call,) = [e for e in not_object if isinstance(e, ToolCallRequest)]
    assert call.input == {} and "JSON object" in call.input_error


async def test_history_with_tool_calls_results_and_an_image_is_translated():
    history = [
        user("look at main.py"),
        {"role": "assistant", "parts": [
            {"type": "reasoning", "text": "I should read it"},
            {"type": "text", "text": "Reading"}, {"type": "text", "text": " it."},
            {"type": "tool_call", "id": "call_1", "name": "view", "input": {"file_path": "main.py"},
             "status": "completed"},
            {"type": "tool_call", "id": "call_2", "name": "ls", "input": {}, "status": "canceled"},
            {"type": "finish", "reason": "tool_use", "time": "2026-01-01T00:00:00Z"}]},
        {"role": "tool", "parts": [{"type": "tool_result", "toolCallId": "call_1", "name": "view",
                                    "content": "print('hi')", "isError": False}]},
        {"role": "assistant", "parts": [{"type": "finish", "reason": "canceled", "time": "x"}]},
        {"role": "user", "parts": [{"type": "text", "text": "and this?"},
                                   {"type": "binary", "path": "a.png", "mimeType": "image/png", "data": "iVBO"},
                                   {"type": "binary", "path": "a.pdf", "mimeType": "application/pdf",
                                    "data": "JVBE"}]},
    ]
    with FakeOpenAI([text_stream("ok")]) as server:
        await collect(provider_for(server), call_with(messages=history, system=""))
    assert server.requests[0]["messages"] == [
        {"role": "user", "content": "look at main.py"},
        {"role": "assistant", "content": "Reading it.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "view",
                                                              "arguments": '{"file_path": "main.py"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "print('hi')"},
        {"role": "tool", "tool_call_id": "call_2", "content": MISSING_RESULT},
        {"role": "user", "content": [
            {"type": "text", "text": "and this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            {"type": "text", "text": "[a.pdf (application/pdf) is attached but cannot be shown to this model]"}]},
    ]


async def test_usage_separates_cached_prompt_tokens():
    stream = [chunk({"content": "x"}), chunk(finish_reason="stop"), chunk(usage=usage(100, 9, cached_tokens=60))]
    with FakeOpenAI([stream]) as server:
        events = await collect(provider_for(server), call_with())
    assert [e for e in events if isinstance(e, Usage)] == [
        Usage(input_tokens=40, output_tokens=9, cache_read_tokens=60)]


async def test_reasoning_content_of_compatible_servers_streams_as_reasoning():
    stream = [chunk({"reasoning_content": "think "}), chunk({"reasoning_content": "hard"}),
              chunk({"content": "42"}), chunk(finish_reason="stop")]
    with FakeOpenAI([stream]) as server:
        events = await collect(provider_for(server), call_with())
    assert [e for e in events if not isinstance(e, Finish)] == [
        ReasoningDelta("think "), ReasoningDelta("hard"), TextDelta("42")]


async def test_max_tokens_and_finish_reason_length():
    with FakeOpenAI([text_stream("cut", finish_reason="length")]) as server:
        events = await collect(provider_for(server), call_with(max_tokens=77))
    assert server.requests[0]["max_tokens"] == 77  # a compatible server: the classic parameter
    assert events[-1] == Finish("max_tokens")


async def test_rate_limit_is_retryable_with_retry_after():
    with FakeOpenAI([Status(429, rate_limited(), {"retry-after": "2"})]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable, error.status, error.retry_after) == ("rate_limit", True, 429, 2.0)
    assert "Rate limit reached" in error.message


async def test_auth_error_is_not_retryable_and_never_shows_the_key():
    body = error_body(f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key")
    with FakeOpenAI([Status(401, body)]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable) == ("auth", False)
    assert KEY not in error.message and KEY not in str(error) and KEY not in repr(error.args)
    assert error.__cause__ is None and error.__suppress_context__


@pytest.mark.parametrize(("status", "code", "retryable"), [
    (500, "server", True), (503, "overloaded", True), (404, "bad_request", False), (400, "bad_request", False)])
async def test_status_codes(status, code, retryable):
    with FakeOpenAI([Status(status, error_body("nope"))]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable, error.status) == (code, retryable, status)


async def test_context_window_error():
    with FakeOpenAI([Status(400, context_too_long())]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable) == ("context_window_exceeded", False)


async def test_llama_cpp_context_error():
    body = {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                      "type": "exceed_context_size_error"}}
    with FakeOpenAI([Status(400, body)]) as server:
        error = await failure(provider_for(server))
    assert error.code == "context_window_exceeded"


async def test_connection_dropped_mid_stream():
    stream = text_stream("partial")[:2] + [Drop()]
    with FakeOpenAI([stream]) as server:
        provider = provider_for(server)
        seen = []
        with pytest.raises(ProviderError) as info:
            async for event in provider.stream(call_with()):
                seen.append(event)
        await provider.aclose()
    assert seen == [TextDelta("partial")]
    assert (info.value.code, info.value.retryable) == ("connection", True)


async def test_stream_that_ends_without_a_finish_is_a_connection_error():
    with FakeOpenAI([[chunk({"content": "half"})]]) as server:
        error = await failure(provider_for(server))
    assert error.code == "connection"


async def test_error_event_in_the_middle_of_the_stream():
    stream = [chunk({"content": "a"}), {"error": {"message": "upstream overloaded", "type": "server_error"}}]
    with FakeOpenAI([stream]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable) == ("server", True)
    assert "upstream overloaded" in error.message


async def test_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ModelConfig(provider="openai", model="m", base_url=f"http://user:pw@127.0.0.1:{port}/v1", api_key=KEY)
    error = await failure(create_provider(config, Path(".")))
    assert (error.code, error.retryable) == ("connection", True)
    assert "pw@" not in error.message


async def test_cancelling_the_consumer_stops_the_stream_promptly():
    release = threading.Event()
    with FakeOpenAI([[chunk({"content": "first"}), Hold(release), chunk({"content": "never"})]]) as server:
        provider = provider_for(server)
        first = asyncio.Event()

        async def consume():
            async for event in provider.stream(call_with()):
                if isinstance(event, TextDelta):
                    first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        await provider.aclose()


def test_a_missing_key_for_openai_itself_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AgentNotInitialized, match="OPENAI_API_KEY"):
        create_provider(ModelConfig(provider="openai", model="gpt-4o"), Path("."))
    with pytest.raises(AgentNotInitialized, match="MY_UNSET_KEY"):
        create_provider(ModelConfig(provider="openai", base_url="http://h/v1", api_key="$MY_UNSET_KEY"), Path("."))


def test_model_info_from_config_and_known_defaults(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    official = create_provider(ModelConfig(provider="openai", model="gpt-4o-mini-2024-07-18"), Path("."))
    assert (official.info.context_window, official.info.cost_per_1m_in, official.info.cost_per_1m_out) == (
        128_000, 0.15, 0.60)
    local = create_provider(ModelConfig(provider="openai", model="qwen", base_url="http://h/v1", name="Qwen",
                                        context_window=4096, cost_per_1m_in=1.0), Path("."))
    assert (local.info.name, local.info.context_window, local.info.cost_per_1m_in, local.info.supports_tools) == (
        "Qwen", 4096, 1.0, True)
    assert local.max_retries == 3
    assert KEY not in repr(official)


def test_creating_the_provider_does_not_import_the_sdk():
    code = ("import sys; from pathlib import Path; from crush_ls.settings import ModelConfig;"
            "from crush_ls.providers import create_provider;"
            "create_provider(ModelConfig(provider='openai', base_url='http://h/v1'), Path('.'));"
            "print('openai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_tool_calls_without_an_index_are_told_apart_by_their_id():
    """Ollama's style: each call whole in its own chunk, no index."""
    stream = [
        chunk({"role": "assistant", "tool_calls": [
            {"id": "call_x", "type": "function", "function": {"name": "view", "arguments": '{"file_path": "a"}'}}]}),
        chunk({"tool_calls": [
            {"id": "call_y", "type": "function", "function": {"name": "view", "arguments": '{"file_path": "b"}'}}]}),
        chunk(finish_reason="stop"),
    ]
    with FakeOpenAI([stream]) as server:
        events = await collect(provider_for(server), call_with(tools=[VIEW]))
    calls = [(e.id, e.input) for e in events if isinstance(e, ToolCallRequest)]
    assert calls == [("call_x", {"file_path": "a"}), ("call_y", {"file_path": "b"})]
    assert events[-1] == Finish("tool_use")  # "stop" with tool calls still continues the turn


async def test_a_stream_that_stalls_past_the_read_timeout_is_a_connection_error(monkeypatch):
    from crush_ls.providers import sdk

    monkeypatch.setattr(sdk, "READ_TIMEOUT_S", 0.3)
    with FakeOpenAI([[chunk({"content": "slow"}), Hold()]]) as server:
        error = await failure(provider_for(server))
    assert (error.code, error.retryable) == ("connection", True)
    assert "timed out" in error.message.lower() or "timeout" in error.message.lower()
