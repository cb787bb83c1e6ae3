"""crush.json files under initializationOptions: precedence, $ENV, and keys kept out of logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from crush_ls.settings import ModelConfig, load_settings, parse_init_options
from crush_ls.settings import crush_json as crush_config

SECRET = "sk-secret-do-not-log-42"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home: no real config of the machine is read."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "CRUSH_GLOBAL_CONFIG", "CRUSH_GLOBAL_DATA"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    return folder


def write(path: Path, content: dict | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


def settings_for(folder: Path, init: dict | None = None):
    return load_settings(folder, parse_init_options(init))


OLLAMA = {
    "type": "openai-compat",
    "base_url": "http://localhost:11434/v1",
    "models": [
        {"id": "qwen3:8b", "name": "Qwen 3 8B", "context_window": 40960, "default_max_tokens": 4096,
         "cost_per_1m_in": 0, "cost_per_1m_out": 0},
        {"id": "llama3.2", "name": "Llama 3.2", "context_window": 131072, "default_max_tokens": 2048},
    ],
}


def test_nothing_configured_leaves_init_options_alone(home, folder):
    settings = settings_for(folder, {"model": {"provider": "echo"}, "permissions": {"mode": "allow"}})
    assert settings.model == ModelConfig(provider="echo")
    assert settings.permissions.mode == "allow"
    assert settings.data_directory == ".crush"
    assert settings.available_models == []


def test_user_file_then_workspace_files_each_winning_key_by_key(home, folder):
    write(home / ".config/crush/crush.json", {
        "providers": {"ollama": OLLAMA},
        "models": {"large": {"provider": "ollama", "model": "llama3.2"},
                   "small": {"provider": "ollama", "model": "llama3.2", "max_tokens": 64}},
        "permissions": {"allowed_tools": ["view"]},
        "options": {"data_directory": ".user-data"},
    })
    write(folder / "crush.json", {"models": {"large": {"provider": "ollama", "model": "qwen3:8b"}},
                                  "options": {"data_directory": ".ws-data"}})
    write(folder / ".crush.json", {"permissions": {"allowed_tools": ["view", "ls", "bash:execute"]}})
    settings = settings_for(folder)
    assert settings.model == ModelConfig(
        provider="openai", model="qwen3:8b", base_url="http://localhost:11434/v1", max_tokens=4096,
        name="Qwen 3 8B", context_window=40960, cost_per_1m_in=0.0, cost_per_1m_out=0.0)
    assert (settings.small_model.model, settings.small_model.max_tokens) == ("llama3.2", 64)
    assert settings.permissions.allowed_tools == ["view", "ls", "bash:execute"]
    assert settings.data_directory == ".ws-data"
    assert [m.model for m in settings.available_models] == ["qwen3:8b", "llama3.2"]


def test_crush_global_config_and_xdg_directories(home, folder, tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    write(xdg / "crush/crush.json", {"options": {"data_directory": ".from-xdg"}})
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert settings_for(folder).data_directory == ".from-xdg"

    crush_dir = tmp_path / "crush-global"
    write(crush_dir / "crush.json", {"options": {"data_directory": ".from-crush-global"}})
    monkeypatch.setenv("CRUSH_GLOBAL_CONFIG", str(crush_dir))  # wins over XDG
    assert settings_for(folder).data_directory == ".from-crush-global"

    # Crush's TUI keeps its choices in the data directory, which wins over the config file.
    data = tmp_path / "data"
    write(data / "crush.json", {"options": {"data_directory": ".from-data"}})
    monkeypatch.setenv("CRUSH_GLOBAL_DATA", str(data))
    assert settings_for(folder).data_directory == ".from-data"


def test_env_variables_in_base_url_and_api_key(home, folder, monkeypatch):
    monkeypatch.setenv("LLM_HOST", "http://gpu-box:8000")
    monkeypatch.setenv("VLLM_KEY", SECRET)
    write(folder / "crush.json", {
        "providers": {"vllm": {"type": "openai-compat", "base_url": "${LLM_HOST}/v1", "api_key": "$VLLM_KEY",
                               "models": [{"id": "qwen"}]}},
        "models": {"large": {"provider": "vllm", "model": "qwen"}},
    })
    model = settings_for(folder).model
    assert model.base_url == "http://gpu-box:8000/v1"
    assert model.api_key == "$VLLM_KEY"  # resolved when the provider is made, so an unset one is named
    assert model.resolved_api_key() == SECRET
    assert SECRET not in repr(settings_for(folder))


def test_expand_env():
    env = {"A": "1", "LONG_NAME": "two"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("UNSET_X", raising=False)
        assert crush_config.expand_env("x$A-${LONG_NAME}/$UNSET_X.") == "x1-two/."


def test_anthropic_provider_and_think(home, folder):
    write(folder / "crush.json", {
        "providers": {"anthropic": {"api_key": "$ANTHROPIC_KEY_FOR_TEST", "models": [
            {"id": "claude-sonnet-4-5", "context_window": 200000, "cost_per_1m_in": 3, "cost_per_1m_out": 15,
             "cost_per_1m_in_cached": 3.75, "cost_per_1m_out_cached": 0.3}]}},
        "models": {"large": {"provider": "anthropic", "model": "claude-sonnet-4-5", "think": True}},
    })
    model = settings_for(folder).model
    assert (model.provider, model.base_url, model.think, model.cost_per_1m_in_cached) == (
        "anthropic", None, True, 3.75)


def test_init_model_replaces_the_files_large_model(home, folder):
    write(folder / "crush.json", {"providers": {"ollama": OLLAMA},
                                  "models": {"large": {"provider": "ollama", "model": "qwen3:8b"}}})
    init = {"model": {"provider": "scripted", "script": {"responses": []}}}
    assert settings_for(folder, init).model.provider == "scripted"


def test_init_model_naming_a_crush_json_model_is_completed_from_it(home, folder):
    write(folder / "crush.json", {"providers": {"ollama": {**OLLAMA, "api_key": "$OLLAMA_TEST_KEY"}}})
    model = settings_for(folder, {"model": {"provider": "openai", "model": "llama3.2", "maxTokens": 99}}).model
    assert (model.base_url, model.api_key, model.context_window, model.max_tokens, model.name) == (
        "http://localhost:11434/v1", "$OLLAMA_TEST_KEY", 131072, 99, "Llama 3.2")


def test_init_model_with_its_own_key_or_endpoint_is_not_completed(home, folder):
    write(folder / "crush.json", {"providers": {"ollama": OLLAMA}})
    own_key = settings_for(folder, {"model": {"provider": "openai", "model": "llama3.2", "apiKey": "k"}}).model
    assert own_key.base_url is None and own_key.context_window is None
    other = settings_for(folder, {"model": {"provider": "openai", "model": "llama3.2",
                                            "baseUrl": "http://elsewhere/v1"}}).model
    assert other.context_window is None


def test_init_model_of_openai_gets_the_key_of_providers_openai(home, folder):
    write(folder / "crush.json", {"providers": {"openai": {"api_key": "$MY_OPENAI"}}})
    model = settings_for(folder, {"model": {"provider": "openai", "model": "gpt-4o"}}).model
    assert (model.base_url, model.api_key) == (None, "$MY_OPENAI")


def test_builtin_providers_need_no_providers_entry(home, folder):
    write(folder / "crush.json", {"models": {"large": {"provider": "openrouter", "model": "qwen/qwen3-coder"}}})
    model = settings_for(folder).model
    assert (model.provider, model.base_url, model.api_key) == (
        "openai", "https://openrouter.ai/api/v1", "$OPENROUTER_API_KEY")


def test_set_model_completion_uses_the_workspace_files(home, folder):
    write(folder / "crush.json", {"providers": {"ollama": OLLAMA}})
    settings = settings_for(folder)
    completed = settings.complete_model(ModelConfig(provider="openai", model="qwen3:8b"))
    assert completed.base_url == "http://localhost:11434/v1"


def test_init_options_win_for_permissions_and_data_directory(home, folder):
    write(folder / "crush.json", {"permissions": {"allowed_tools": ["bash"]},
                                  "options": {"data_directory": ".file"}})
    settings = settings_for(folder, {"permissions": {"allowedTools": []}, "dataDirectory": ".crush"})
    assert settings.permissions.allowed_tools == []
    assert settings.data_directory == ".crush"


def test_bad_json_is_skipped_with_a_warning_that_shows_no_key(home, folder, caplog):
    write(home / ".config/crush/crush.json", {"providers": {"ollama": OLLAMA},
                                              "models": {"large": {"provider": "ollama", "model": "llama3.2"}}})
    write(folder / "crush.json", '{"providers": {"x": {"api_key": "' + SECRET + '"}},, }')
    with caplog.at_level(logging.DEBUG):
        settings = settings_for(folder)
    assert settings.model.model == "llama3.2"  # the good file still counts
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(folder / "crush.json") in warnings[0] and "not valid JSON" in warnings[0]
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_unusable_entries_are_reported_without_values(home, folder, caplog):
    write(folder / "crush.json", {
        "providers": {"gemini": {"type": "google", "api_key": SECRET, "models": [{"id": "gemini-2.5-pro"}]},
                      "broken": "not an object"},
        "models": {"large": {"provider": "gemini", "model": "gemini-2.5-pro"}, "small": {"model": "x"}},
        "permissions": {"allowed_tools": "bash"},
    })
    with caplog.at_level(logging.DEBUG):
        settings = settings_for(folder)
    assert settings.model is None and settings.small_model is None
    assert settings.permissions.allowed_tools == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "models.large" in messages and "models.small" in messages and "allowed_tools" in messages
    assert SECRET not in messages


def test_a_non_object_file_and_an_unreadable_one(home, folder, caplog):
    write(folder / "crush.json", "[1, 2]")
    (folder / ".crush.json").mkdir()  # a directory: reading it fails
    with caplog.at_level(logging.WARNING):
        settings = settings_for(folder)
    assert settings.model is None
    assert len(caplog.records) == 2
