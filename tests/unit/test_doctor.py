"""`crush-ls doctor`: each problem gives exit 1 and an `error` line that names it; no key value is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEY_VARIABLE = "CRUSH_DOCTOR_TEST_KEY"
SECRET = "sk-doctor-test-secret-value"


def doctor(folder: Path, env_extra: dict[str, str] | None = None,
           command: tuple[str, ...] = ("doctor", "--folder")) -> tuple[int, list[str]]:
    home = folder.parent / "home"
    unset = {KEY_VARIABLE, "OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUSH_") and k not in unset}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    env.update(env_extra or {})
    args = [*command, str(folder)] if command[-1] == "--folder" else list(command)
    proc = subprocess.run([sys.executable, "-m", "crush_ls", *args], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=120)
    assert SECRET not in proc.stdout + proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("error")]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


def write_crush_json(folder: Path, data: dict | str) -> Path:
    path = folder / "crush.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


OPENAI_MODEL = {
    "providers": {"openai": {"api_key": f"${KEY_VARIABLE}"}},
    "models": {"large": {"provider": "openai", "model": "gpt-4o-mini"}},
}


def test_a_healthy_setup_exits_0_and_names_what_it_found(folder):
    path = write_crush_json(folder, OPENAI_MODEL)
    code, lines = doctor(folder, {KEY_VARIABLE: SECRET})

    assert code == 0, "\n".join(lines)
    assert errors(lines) == []
    assert lines[0] == f"crush-ls doctor: {folder}"
    assert lines[1].startswith("ok     Python 3.")
    assert lines[2].startswith("ok     crush-ls ") and "pygls " in lines[2]
    assert f"ok     crush.json: {path} (found)" in lines
    assert f"ok     model: openai/gpt-4o-mini (models.large of crush.json), key from ${KEY_VARIABLE}" in lines
    assert f"ok     data directory: {folder / '.crush'} (writable)" in lines
    assert any(line.startswith("ok     llama.cpp: ") for line in lines)
    assert lines[-1] == "No problems found."
    assert not (folder / ".crush").exists(), "doctor creates nothing"


def test_a_missing_key_variable_is_named(folder):
    write_crush_json(folder, OPENAI_MODEL)
    code, lines = doctor(folder)

    assert code == 1
    assert errors(lines) == [
        f"error  model: openai/gpt-4o-mini: OpenAI model: the API key variable '${KEY_VARIABLE}' "
        "is not set in the environment."
    ]
    assert lines[-1] == "1 problem(s) found."


def test_a_broken_crush_json_is_named_with_its_position(folder):
    path = write_crush_json(folder, '{"models": {\n  "large": \n')
    code, lines = doctor(folder, {KEY_VARIABLE: SECRET})

    assert code == 1
    assert errors(lines) == [f"error  crush.json: ignoring {path}: it is not valid JSON (error at line 3 column 1)"]


def test_a_data_directory_behind_a_file_cannot_be_created(folder):
    (folder / "blocker").write_text("not a folder\n")
    write_crush_json(folder, {**OPENAI_MODEL, "options": {"data_directory": "blocker/data"}})
    code, lines = doctor(folder, {KEY_VARIABLE: SECRET})

    assert code == 1
    assert errors(lines) == [
        f"error  data directory: {folder / 'blocker' / 'data'} cannot be created: {folder / 'blocker'} is not a directory"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_data_directory_is_named(folder):
    write_crush_json(folder, OPENAI_MODEL)
    data = folder / ".crush"
    data.mkdir()
    data.chmod(0o555)
    try:
        code, lines = doctor(folder, {KEY_VARIABLE: SECRET})
    finally:
        data.chmod(0o755)

    assert code == 1
    assert errors(lines) == [f"error  data directory: {data} is not writable: Permission denied"]


def test_the_init_options_of_an_editor_choose_the_model(folder):
    options = json.dumps({"model": {"provider": "scripted", "script": {"responses": [{"events": [{"text": "hi"}]}]}}})
    code, lines = doctor(folder, command=("doctor", "--folder", str(folder), "--init-options", options))

    assert code == 0, "\n".join(lines)
    assert "ok     model: scripted (from the options given)" in lines


def test_acp_check_runs_the_same_checks_with_the_model_of_its_flags(folder):
    code, lines = doctor(folder, command=("acp", "--check", "--model", "openai:gpt-4o-mini"))

    assert code == 1
    assert lines[0] == f"crush-ls doctor: {folder}"
    assert errors(lines) == [
        "error  model: openai/gpt-4o-mini: OpenAI model: the API key variable '$OPENAI_API_KEY' is not set in the environment."
    ]


def test_acp_check_of_a_healthy_setup_exits_0(folder):
    code, lines = doctor(folder, command=("acp", "--check", "--model", "echo"))

    assert code == 0, "\n".join(lines)
    assert "ok     model: echo (from the options given)" in lines
    assert lines[-1] == "No problems found."


def test_mcp_servers_are_listed_with_their_configuration_state(folder):
    pytest.importorskip("crush_ls.mcp")
    write_crush_json(folder, {**OPENAI_MODEL, "mcp": {
        "here": {"type": "stdio", "command": sys.executable, "args": ["-c", "pass"]},
        "gone": {"type": "stdio", "command": "/nonexistent/mcp-server"},
        "web": {"type": "http"},
        "off": {"type": "stdio", "command": "/nonexistent/other", "disabled": True},
    }})
    code, lines = doctor(folder, {KEY_VARIABLE: SECRET})

    assert code == 1
    assert errors(lines) == [
        "error  MCP gone (stdio /nonexistent/mcp-server): command '/nonexistent/mcp-server' not found",
        "error  MCP web (http ?): invalid configuration: an http server needs a url",
    ]
    assert f"ok     MCP here (stdio {sys.executable}): configured (connected when a workspace opens)" in lines
    assert "ok     MCP off (stdio /nonexistent/other): disabled" in lines


def test_no_mcp_servers_is_said(folder):
    pytest.importorskip("crush_ls.mcp")
    write_crush_json(folder, OPENAI_MODEL)
    code, lines = doctor(folder, {KEY_VARIABLE: SECRET})

    assert code == 0 and "ok     MCP: no servers configured" in lines
