"""agent/models and agent/setModel with crush.json models behind fake vendor servers.

PROTOCOL section 2: `agent/models` lists what `agent/setModel` can switch to;
a model named by provider and id is completed from crush.json (base URL,
key, window, prices). A model that cannot be used is `agent_not_initialized`
with a message that says how to configure it. Keys never appear in a result.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from crush_ls.providers import local_model_available
from tests.conftest import AgentClient, say, scripted, server_env
from tests.e2e.expect import refused_with
from tests.e2e.runs import run, stored
from tests.processes import open_connections
from tests.providers import fake_openai as openai
from tests.providers.fake_vendor import Hold

SECRET = "sk-models-secret-0123456789abcdef"
MODEL_KEYS = {"provider", "model", "name", "contextWindow", "supportsTools"}
EMBEDDED = ("local", "smollm2-135m-instruct")


def write_crush_json(folder: Path, base_url: str) -> None:
    """Two usable models of an OpenAI-compatible provider, and one whose key variable is unset."""
    (folder / "crush.json").write_text(json.dumps({
        "providers": {
            "fake": {"type": "openai-compat", "base_url": base_url, "api_key": "$FAKE_VENDOR_KEY",
                     "models": [
                         {"id": "gpt-test", "name": "Fake GPT", "context_window": 8192,
                          "cost_per_1m_in": 1000, "cost_per_1m_out": 2000},
                         {"id": "gpt-other", "name": "Other GPT", "context_window": 4096,
                          "cost_per_1m_in": 3000, "cost_per_1m_out": 5000},
                     ]},
            "keyless": {"type": "anthropic", "api_key": "$CRUSH_LS_TEST_UNSET_KEY",
                        "models": [{"id": "claude-keyless", "name": "No key", "context_window": 200000}]},
        },
        "models": {"large": {"provider": "fake", "model": "gpt-test"}},
    }))


def env_without_vendor_keys() -> dict[str, str]:
    env = server_env(FAKE_VENDOR_KEY=SECRET)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "CRUSH_LS_TEST_UNSET_KEY"):
        env.pop(name, None)
    return env


def ws(client: AgentClient, **params: Any) -> dict[str, Any]:
    return {"workspace": client.ws_uri, **params}


def by_id(models: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["provider"], m["model"]): m for m in models}


async def test_models_lists_crush_json_models_the_current_and_the_embedded_one(start, workspace):
    with openai.FakeOpenAI() as server:
        write_crush_json(workspace, server.base_url)
        client = await start(env=env_without_vendor_keys())
        result = await client.call("agent/models", ws(client))
    assert result["current"] == {"provider": "openai", "model": "gpt-test", "name": "Fake GPT",
                                 "contextWindow": 8192, "supportsTools": True}
    available = by_id(result["available"])
    assert result["available"][0] == result["current"]  # the current model comes first
    assert all(set(m) == MODEL_KEYS for m in result["available"])
    assert len(available) == len(result["available"])  # no model twice
    assert available[("openai", "gpt-other")] == {"provider": "openai", "model": "gpt-other", "name": "Other GPT",
                                                  "contextWindow": 4096, "supportsTools": True}
    # Its key variable is not set: it cannot be used, so it is not offered.
    assert ("anthropic", "claude-keyless") not in available
    assert (EMBEDDED in available) == local_model_available()
    if local_model_available():
        assert available[EMBEDDED]["supportsTools"] is False
    assert SECRET not in json.dumps(result)


async def test_models_lists_the_current_model_without_crush_json(start):
    client = await start({"model": scripted({"events": [{"text": "hi"}]})}, env=env_without_vendor_keys())
    result = await client.call("agent/models", ws(client))
    assert result["current"]["provider"] == "scripted"
    assert [m["provider"] for m in result["available"]] == ["scripted"] + (["local"] if local_model_available() else [])


async def test_set_model_by_provider_and_id_is_completed_from_crush_json(start, workspace):
    """The editor's flow: pick an entry of agent/models, send back its provider and model."""
    with openai.FakeOpenAI([openai.text_stream("from", " the other", prompt_tokens=100, completion_tokens=10)]) as server:
        write_crush_json(workspace, server.base_url)
        client = await start({"model": scripted({"events": [{"text": "scripted"}]})}, env=env_without_vendor_keys())
        listed = by_id((await client.call("agent/models", ws(client)))["available"])[("openai", "gpt-other")]
        switched = await client.call("agent/setModel", ws(client, model={"provider": listed["provider"],
                                                                          "model": listed["model"]}))
        assert switched == {"current": listed}
        assert (await client.call("agent/models", ws(client)))["current"] == listed
        session = await client.new_session()
        done = await client.completed((await client.send(session, "hello"))["runId"])
    assert (done["finishReason"], done["text"]) == ("end_turn", "from the other")
    # crush.json's base URL, key and prices were used.
    assert server.requests[0]["model"] == "gpt-other"
    assert server.request_headers[0]["authorization"] == f"Bearer {SECRET}"
    assert abs(done["usage"]["cost"] - (100 * 3000 + 10 * 5000) / 1e6) < 1e-9
    assert SECRET not in json.dumps(switched)


async def test_set_model_makes_a_workspace_without_a_model_usable(start, workspace):
    """No usable model at start: agent/models still offers crush.json's models to pick from."""
    with openai.FakeOpenAI([openai.text_stream("picked")]) as server:
        write_crush_json(workspace, server.base_url)
        client = await start({"model": {"provider": "scripted", "scriptPath": "missing.json"}},
                             env=env_without_vendor_keys())
        session = await client.new_session()
        await refused_with(client, "agent/sendMessage", ws(client, sessionId=session, prompt="hi"),
                           "agent_not_initialized", -32012)
        result = await client.call("agent/models", ws(client))
        assert result["current"] is None
        assert {("openai", "gpt-test"), ("openai", "gpt-other")} <= set(by_id(result["available"]))
        await client.call("agent/setModel", ws(client, model={"provider": "openai", "model": "gpt-test"}))
        done = await client.completed((await client.send(session, "now"))["runId"])
    assert (done["finishReason"], done["text"]) == ("end_turn", "picked")


async def test_set_model_without_a_key_says_how_to_configure_one(start, workspace):
    client = await start({"model": scripted({"events": [{"text": "hi"}]})}, env=env_without_vendor_keys())
    current = (await client.call("agent/models", ws(client)))["current"]
    error = await refused_with(client, "agent/setModel", ws(client, model={"provider": "anthropic",
                                                                           "model": "claude-sonnet-4-5"}),
                               "agent_not_initialized", -32012)
    assert "ANTHROPIC_API_KEY" in error.message
    error = await refused_with(client, "agent/setModel",
                               ws(client, model={"provider": "openai", "model": "gpt-4.1",
                                                 "apiKey": "$CRUSH_LS_TEST_UNSET_KEY"}),
                               "agent_not_initialized", -32012)
    assert "CRUSH_LS_TEST_UNSET_KEY" in error.message
    assert (await client.call("agent/models", ws(client)))["current"] == current


async def test_set_model_with_a_literal_key_shows_no_key(start, workspace):
    with openai.FakeOpenAI([openai.text_stream("keyed")]) as server:
        client = await start({"model": scripted({"events": [{"text": "hi"}]})}, env=env_without_vendor_keys())
        switched = await client.call("agent/setModel", ws(client, model={
            "provider": "openai", "model": "gpt-test", "baseUrl": server.base_url, "apiKey": SECRET,
            "name": "Literal", "contextWindow": 1234}))
        assert switched["current"] == {"provider": "openai", "model": "gpt-test", "name": "Literal",
                                       "contextWindow": 1234, "supportsTools": True}
        models = await client.call("agent/models", ws(client))
        status = await client.call("agent/status", ws(client))
        session = await client.new_session()
        done = await client.completed((await client.send(session, "go"))["runId"])
    assert done["text"] == "keyed"
    assert server.request_headers[0]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps([switched, models, status, client.notes])


async def test_set_model_during_a_run_applies_to_the_next_prompt(start):
    release = threading.Event()
    held = [openai.chunk({"role": "assistant", "content": ""}), openai.chunk({"content": "old model "}),
            Hold(release), openai.chunk({"content": "still talking"}), openai.chunk(finish_reason="stop")]
    with openai.FakeOpenAI([held]) as old, openai.FakeOpenAI([openai.text_stream("new model here")]) as new:
        client = await start({"model": {"provider": "openai", "model": "old-model", "baseUrl": old.base_url,
                                        "apiKey": SECRET}}, env=env_without_vendor_keys())
        session = await client.new_session()
        first = (await client.send(session, "first"))["runId"]
        await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == first)
        switched = await client.call("agent/setModel", ws(client, model={
            "provider": "openai", "model": "new-model", "baseUrl": new.base_url, "apiKey": SECRET}))
        assert switched["current"]["model"] == "new-model"
        release.set()
        done = await client.completed(first)
        second = await client.completed((await client.send(session, "second"))["runId"])
    assert (done["finishReason"], done["text"]) == ("end_turn", "old model still talking")
    assert second["text"] == "new model here"
    assert [r["model"] for r in old.requests] == ["old-model"] and [r["model"] for r in new.requests] == ["new-model"]
    messages = await stored(client, session)
    assert [m.get("model") for m in messages if m["role"] == "assistant"] == ["old-model", "new-model"]


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "huge"])
async def test_set_model_with_a_script_path_that_is_no_regular_file_is_refused_without_blocking(
        start, workspace, kind):
    if kind == "fifo":
        path = workspace / "script.json"
        os.mkfifo(path)  # nobody ever writes it: reading it would wait forever
    elif kind == "dev_zero":
        path = Path("/dev/zero")
    else:
        path = workspace / "big.json"
        with path.open("wb") as file:
            file.truncate(64 * 1024 * 1024)
    client = await start({"model": scripted(say("from the first model"))})
    session = await client.new_session()
    switching = asyncio.ensure_future(client.call(
        "agent/setModel", ws(client, model={"provider": "scripted", "scriptPath": str(path)})))
    # The server keeps answering while (and after) it looks at the file.
    listed = await asyncio.wait_for(client.call("session/list", ws(client)), 5)
    assert [s["id"] for s in listed["sessions"]] == [session]
    await asyncio.wait_for(asyncio.wait({switching}), 5)
    error = await refused_with(client, "agent/setModel", ws(client, model={
        "provider": "scripted", "scriptPath": str(path)}), "agent_not_initialized", -32012)
    assert str(path) in error.message
    assert ("FIFO" if kind == "fifo" else "character device" if kind == "dev_zero" else "larger than") \
        in error.message
    assert switching.exception() is not None
    done = await client.completed((await client.send(session, "still there?"))["runId"])
    assert done["text"] == "from the first model"  # the refused model changed nothing


async def test_set_model_with_a_script_path_takes_effect_before_the_next_prompt(start, workspace):
    (workspace / "script.json").write_text(json.dumps({"responses": [say("from the script file")]}))
    client = await start({"model": scripted(say("from the first model"))})
    session = await client.new_session()
    # Sent back to back: the prompt right behind agent/setModel already gets the new model.
    switching = asyncio.ensure_future(client.call(
        "agent/setModel", ws(client, model={"provider": "scripted", "scriptPath": "script.json"})))
    sent = asyncio.ensure_future(client.send(session, "which model?"))
    assert (await switching)["current"]["provider"] == "scripted"
    done = await client.completed((await sent)["runId"])
    assert done["text"] == "from the script file"


async def test_a_model_replaced_by_set_model_lets_go_of_its_connections(start):
    with openai.FakeOpenAI([openai.text_stream("one"), openai.text_stream("two")], titles="T") as main:
        model = {"provider": "openai", "model": "gpt-test", "baseUrl": main.base_url, "apiKey": SECRET}
        client = await start({"model": model})
        session = await client.new_session()
        await run(client, session, "first")  # the first model keeps its connection alive
        await client.wait_for(lambda n: n["type"] == "session_updated" and n["session"]["title"] == "T")
        await client.call("agent/setModel", {"workspace": client.ws_uri, "model": model})
        await run(client, session, "second")
        port = int(main.origin.rsplit(":", 1)[1])
        assert open_connections(client._server.pid, port) == 1  # the current model's only
        await client.shutdown_session()

