"""Real vendor providers behind the real server: crush.json, retries, tool round trips, no key leaks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import server_env
from tests.providers import fake_anthropic as anthropic
from tests.providers import fake_openai as openai
from tests.providers.fake_vendor import Status
from tests.raw import RawServer, run_complete_of

SECRET = "sk-live-never-in-logs-0123456789"


def crush_json(folder: Path, base_url: str) -> None:
    (folder / "crush.json").write_text(json.dumps({
        "providers": {"fake": {"type": "openai-compat", "base_url": base_url, "api_key": "$FAKE_VENDOR_KEY",
                               "models": [{"id": "gpt-test", "name": "Fake GPT", "context_window": 8192,
                                           "cost_per_1m_in": 1000, "cost_per_1m_out": 2000}]}},
        "models": {"large": {"provider": "fake", "model": "gpt-test"}},
    }))


async def test_the_crush_json_model_answers_a_prompt(start, workspace):
    with openai.FakeOpenAI([openai.text_stream("Hello", " from", " crush.json", prompt_tokens=30,
                                               completion_tokens=3)]) as server:
        crush_json(workspace, server.base_url)
        client = await start(env=server_env(FAKE_VENDOR_KEY=SECRET))
        models = await client.call("agent/models", {"workspace": client.ws_uri})
        assert models["current"] == {"provider": "openai", "model": "gpt-test", "name": "Fake GPT",
                                     "contextWindow": 8192, "supportsTools": True}
        session = await client.new_session()
        run = (await client.send(session, "say hello"))["runId"]
        done = await client.completed(run)
    assert (done["finishReason"], done["text"]) == ("end_turn", "Hello from crush.json")
    assert done["usage"]["inputTokens"] == 30 and done["usage"]["outputTokens"] == 3
    assert abs(done["usage"]["cost"] - (30 * 1000 + 3 * 2000) / 1e6) < 1e-9
    body = server.requests[0]
    assert body["messages"][-1] == {"role": "user", "content": "say hello"}
    assert body["messages"][0]["role"] == "system"
    assert {t["function"]["name"] for t in body["tools"]} >= {"view", "ls"}
    assert server.request_headers[0]["authorization"] == f"Bearer {SECRET}"


async def test_a_rate_limited_call_is_retried_and_announced(start, workspace):
    responses = [Status(429, openai.rate_limited(), {"retry-after": "0"}), openai.text_stream("after retry")]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": {"provider": "openai", "model": "gpt-test", "baseUrl": server.base_url,
                                        "apiKey": SECRET}})
        session = await client.new_session()
        run = (await client.send(session, "hi"))["runId"]
        done = await client.completed(run)
    errors = [n for n in client.of_run(run) if n["type"] == "agent_error"]
    assert [(e["code"], e["retryable"], e["willRetry"]) for e in errors] == [("rate_limit", True, True)]
    assert (done["finishReason"], done["text"]) == ("end_turn", "after retry")
    assert len(server.requests) == 2


async def test_anthropic_tool_round_trip_replays_signed_thinking(start, workspace):
    (workspace / "hello.txt").write_text("hi there\n")
    first = [anthropic.message_start(input_tokens=50),
             *anthropic.thinking_block(0, "I will read it.", signature="sig-abc"),
             *anthropic.tool_use_block(1, "view", json.dumps({"file_path": "hello.txt"}), "toolu_01"),
             anthropic.message_delta("tool_use", 20), anthropic.message_stop()]
    second = anthropic.text_stream("It says hi there.", input_tokens=80, output_tokens=6)
    with anthropic.FakeAnthropic([first, second]) as server:
        client = await start({"model": {"provider": "anthropic", "model": "claude-test", "baseUrl": server.base_url,
                                        "apiKey": SECRET, "think": True}})
        session = await client.new_session()
        run = (await client.send(session, "what does hello.txt say?"))["runId"]
        done = await client.completed(run)
    assert (done["finishReason"], done["text"]) == ("end_turn", "It says hi there.")
    assert done["usage"]["inputTokens"] == 130 and done["usage"]["outputTokens"] == 26
    assert "I will read it." in "".join(n["text"] for n in client.of_run(run) if n["type"] == "reasoning_delta")
    replayed = server.requests[1]["messages"]
    assert replayed[1]["role"] == "assistant"
    assert replayed[1]["content"][0] == {"type": "thinking", "thinking": "I will read it.", "signature": "sig-abc"}
    assert replayed[1]["content"][1]["type"] == "tool_use" and replayed[1]["content"][1]["id"] == "toolu_01"
    (result,) = replayed[2]["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01"
    assert "hi there" in json.dumps(result["content"]) and not result.get("is_error")


def test_the_key_reaches_no_log_notification_or_database(workspace, monkeypatch):
    """An auth error whose body echoes the key, with the server logging at DEBUG."""
    monkeypatch.setattr("tests.raw.SERVER_CMD", [*__import__("tests.conftest").conftest.SERVER_CMD,
                                                 "--log-level", "DEBUG"])
    echo_key = Status(401, openai.error_body(f"Incorrect API key provided: {SECRET}", code="invalid_api_key"))
    with openai.FakeOpenAI([echo_key]) as server:
        raw = RawServer(workspace, {"model": {"provider": "openai", "model": "gpt-test",
                                              "baseUrl": server.base_url, "apiKey": SECRET}})
        try:
            session = raw.request("session/create", {})["result"]["id"]
            sent = raw.request("agent/sendMessage", {"sessionId": session, "prompt": "hi"})["result"]
            done = raw.read_until(run_complete_of(sent["runId"]))
            raw.request("session/messages", {"sessionId": session})
            raw.request("shutdown")
            raw.notify("exit")
            assert raw.proc.wait(10) == 0
            stderr = raw.proc.stderr.read().decode(errors="replace")
        finally:
            raw.close()
    assert done["params"]["finishReason"] == "error"
    errors = [m["params"] for m in raw.received if m.get("params", {}).get("type") == "agent_error"]
    assert [(e["code"], e["willRetry"]) for e in errors] == [("auth", False)]
    assert "DEBUG" in stderr  # the server did log at DEBUG
    assert SECRET not in stderr
    assert SECRET not in json.dumps(raw.received)
    for path in (workspace / ".crush").iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
