"""Errors of vendor calls through the real server: codes, retries, and what is stored.

PROTOCOL section 3, "Models and errors of a run": `agent_error.code` from
the HTTP status (or the transport), `retryable` for rate_limit / overloaded
/ server / connection, `willRetry: true` before the server retries by itself
(and before any text of the retried call), `willRetry: false` on the last
error of a run that ends `error`. auth and bad_request are never retried.
Retry delays are 10 ms here (`server_env` sets CRUSH_LS_RETRY_BASE_MS).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AgentClient
from tests.e2e.runs import assert_runs_end_once, finish_reason, roles, stored, text
from tests.providers import fake_anthropic as anthropic
from tests.providers import fake_openai as openai
from tests.providers.fake_vendor import Drop, FakeVendorServer, Status

SECRET = "sk-vendor-errors-0123456789"
RETRIES = 3  # max_retries of both vendor providers


def fake(vendor: str, responses: list[Any]) -> FakeVendorServer:
    return (openai.FakeOpenAI if vendor == "openai" else anthropic.FakeAnthropic)(responses)


def model(vendor: str, server: FakeVendorServer) -> dict[str, Any]:
    return {"model": {"provider": vendor, "model": f"{vendor}-test", "baseUrl": server.base_url, "apiKey": SECRET}}


def answer(vendor: str, *pieces: str) -> list[dict[str, Any]]:
    return (openai if vendor == "openai" else anthropic).text_stream(*pieces)


def partial_then_drop(vendor: str, piece: str) -> list[Any]:
    """A stream that says `piece` and then loses its connection."""
    if vendor == "openai":
        return [openai.chunk({"role": "assistant", "content": ""}), openai.chunk({"content": piece}), Drop()]
    return [anthropic.message_start(), anthropic.block_start(0, {"type": "text", "text": ""}),
            anthropic.block_delta(0, {"type": "text_delta", "text": piece}), Drop()]


def rate_limited(vendor: str) -> Status:
    body = openai.rate_limited() if vendor == "openai" else anthropic.rate_limited()
    return Status(429, body, {"retry-after": "0"})


def error(vendor: str, status: int, message: str, kind: str) -> Status:
    if vendor == "openai":
        return Status(status, openai.error_body(message, kind))
    return Status(status, anthropic.error_body(message, kind))


async def prompt(client: AgentClient, text_: str = "hello") -> tuple[str, str, dict[str, Any]]:
    session = await client.new_session()
    run = (await client.send(session, text_))["runId"]
    done = await client.completed(run)
    assert_runs_end_once(client.notes, [run])
    return session, run, done


def errors_of(client: AgentClient, run: str) -> list[tuple[str, bool, bool]]:
    return [(n["code"], n["retryable"], n["willRetry"]) for n in client.of_run(run) if n["type"] == "agent_error"]


def assistants(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["role"] == "assistant"]


VENDORS = pytest.mark.parametrize("vendor", ["openai", "anthropic"])


# ---------------------------------------------------------------------- retried, then answered
@VENDORS
async def test_rate_limit_is_retried_and_the_answer_stored_once(start, vendor):
    with fake(vendor, [rate_limited(vendor), answer(vendor, "after", " retry")]) as server:
        client = await start(model(vendor, server))
        session, run, done = await prompt(client)
    assert errors_of(client, run) == [("rate_limit", True, True)]
    assert (done["finishReason"], done["text"]) == ("end_turn", "after retry")
    assert len(server.requests) == 2
    types = client.types_of(run)
    assert types.index("agent_error") < types.index("text_delta")  # announced before the retried call's text
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant"]
    (reply,) = assistants(messages)
    assert (text(reply), finish_reason(reply)) == ("after retry", "end_turn")


@VENDORS
async def test_a_connection_dropped_mid_stream_is_retried_and_its_text_dropped(start, vendor):
    with fake(vendor, [partial_then_drop(vendor, "half an ans"), answer(vendor, "the whole answer")]) as server:
        client = await start(model(vendor, server))
        session, run, done = await prompt(client)
    assert errors_of(client, run) == [("connection", True, True)]
    assert (done["finishReason"], done["text"]) == ("end_turn", "the whole answer")
    assert len(server.requests) == 2
    notes = client.of_run(run)
    announced = next(i for i, n in enumerate(notes) if n["type"] == "agent_error")
    retried_text = "".join(n["text"] for n in notes[announced:] if n["type"] == "text_delta")
    assert retried_text == "the whole answer"
    (reply,) = assistants(await stored(client, session))
    assert (text(reply), finish_reason(reply)) == ("the whole answer", "end_turn")


@pytest.mark.parametrize(("vendor", "status"), [("openai", 503), ("anthropic", 529), ("anthropic", 503)])
async def test_overloaded_is_retried(start, vendor, status):
    responses = [error(vendor, status, "Overloaded", "overloaded_error"), answer(vendor, "fine now")]
    with fake(vendor, responses) as server:
        client = await start(model(vendor, server))
        _session, run, done = await prompt(client)
    assert errors_of(client, run) == [("overloaded", True, True)]
    assert (done["finishReason"], done["text"]) == ("end_turn", "fine now")
    assert len(server.requests) == 2


# ---------------------------------------------------------------------- errors that end the run
@VENDORS
async def test_auth_error_is_not_retried(start, vendor):
    responses = [error(vendor, 401, "invalid x-api-key", "authentication_error"), answer(vendor, "never")]
    with fake(vendor, responses) as server:
        client = await start(model(vendor, server))
        session, run, done = await prompt(client)
        await client.call("agent/status", {"workspace": client.ws_uri})  # a late retry would have arrived
        requests = len(server.requests)
    assert requests == 1
    assert errors_of(client, run) == [("auth", False, False)]
    assert done["finishReason"] == "error" and "401" in done["error"]
    assert client.types_of(run)[-2:] == ["agent_error", "run_complete"]
    (reply,) = assistants(await stored(client, session))
    assert finish_reason(reply) == "error"
    assert SECRET not in str(client.notes)


@VENDORS
async def test_retries_run_out_after_server_errors(start, vendor):
    responses = [error(vendor, 500, f"boom {i}", "api_error") for i in range(RETRIES + 1)]
    with fake(vendor, [*responses, answer(vendor, "too late")]) as server:
        client = await start(model(vendor, server))
        session, run, done = await prompt(client)
        requests = len(server.requests)
    assert requests == RETRIES + 1
    assert errors_of(client, run) == [("server", True, True)] * RETRIES + [("server", True, False)]
    assert done["finishReason"] == "error" and "boom 3" in done["error"]
    assert client.types_of(run)[-2:] == ["agent_error", "run_complete"]
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant"]
    assert finish_reason(messages[1]) == "error"


@pytest.mark.parametrize(("vendor", "body"), [("openai", openai.context_too_long()),
                                              ("anthropic", anthropic.context_too_long())])
async def test_a_full_context_window_is_not_retried(start, vendor, body):
    with fake(vendor, [Status(400, body), answer(vendor, "never")]) as server:
        client = await start(model(vendor, server))
        _session, run, done = await prompt(client)
        await client.call("agent/status", {"workspace": client.ws_uri})
        requests = len(server.requests)
    assert requests == 1
    assert errors_of(client, run) == [("context_window_exceeded", False, False)]
    assert done["finishReason"] == "error"


async def test_other_client_errors_are_bad_request_and_not_retried(start):
    with fake("openai", [error("openai", 404, "The model does not exist", "invalid_request_error")]) as server:
        client = await start(model("openai", server))
        _session, run, done = await prompt(client)
    assert errors_of(client, run) == [("bad_request", False, False)]
    assert done["finishReason"] == "error" and len(server.requests) == 1


async def test_a_refused_connection_is_retried_then_ends_the_run(start, unused_tcp_port):
    client = await start({"model": {"provider": "openai", "model": "gpt-test", "apiKey": SECRET,
                                    "baseUrl": f"http://127.0.0.1:{unused_tcp_port}/v1"}})
    _session, run, done = await prompt(client)
    assert errors_of(client, run) == [("connection", True, True)] * RETRIES + [("connection", True, False)]
    assert done["finishReason"] == "error" and f"127.0.0.1:{unused_tcp_port}" in done["error"]


async def test_a_cancel_during_the_retry_wait_ends_the_run_at_once(start):
    """The vendor asks for a 30 s pause: a cancel does not wait for it, and nothing is retried."""
    with fake("openai", [Status(429, openai.rate_limited(), {"retry-after": "30"}), answer("openai", "never")]) as server:
        client = await start(model("openai", server))
        session = await client.new_session()
        run = (await client.send(session, "hello"))["runId"]
        await client.wait_for(lambda n: n["type"] == "agent_error" and n["runId"] == run)
        await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})
        done = await client.completed(run, timeout=5)
        requests = len(server.requests)
    assert done["finishReason"] == "canceled" and "error" not in done
    assert errors_of(client, run) == [("rate_limit", True, True)]
    assert requests == 1
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant"] and finish_reason(messages[1]) == "canceled"


async def test_an_anthropic_error_event_mid_stream_is_classified_and_retried(start):
    """Anthropic reports overload inside a 200 stream, as an `error` event after some text."""
    broken = [anthropic.message_start(), anthropic.block_start(0, {"type": "text", "text": ""}),
              anthropic.block_delta(0, {"type": "text_delta", "text": "half"}),
              {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
    with fake("anthropic", [broken, answer("anthropic", "whole")]) as server:
        client = await start(model("anthropic", server))
        session, run, done = await prompt(client)
    assert errors_of(client, run) == [("overloaded", True, True)]
    assert (done["finishReason"], done["text"]) == ("end_turn", "whole")
    (reply,) = assistants(await stored(client, session))
    assert text(reply) == "whole"
