"""Fixtures for driving `crush-ls chat` / `crush-ls sessions` as a person or a script would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .terminal import Terminal

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "crush_ls"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("# demo\n")
    return folder


@pytest.fixture
def chat_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no user crush.json, history in tmp, the checkout importable."""
    env = {k: v for k, v in os.environ.items() if k != "CRUSH_LS_SERVER_COMMAND"}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        XDG_STATE_HOME=str(tmp_path / "home" / ".state"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",  # no cursor-position query the test would have to answer
        COLUMNS="120",
    )
    return env


@pytest.fixture
def write_script(tmp_path: Path) -> Callable[[list[dict[str, Any]]], str]:
    """A scripted-provider script file (PROTOCOL section 7) from its responses."""
    count = 0

    def write(responses: list[dict[str, Any]]) -> str:
        nonlocal count
        count += 1
        path = tmp_path / f"script{count}.json"
        path.write_text(json.dumps({"responses": responses}))
        return str(path)

    return write


@pytest.fixture
def run_cli(workspace: Path, chat_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `crush-ls ARGS...` in the workspace with standard input from `input` (not a terminal)."""

    def run(*args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], cwd=workspace, env=chat_env, input=input, capture_output=True, text=True, timeout=60,
        )

    return run


@pytest.fixture
def terminal(workspace: Path, chat_env: dict[str, str]) -> Iterator[Callable[..., Terminal]]:
    """Start `crush-ls ARGS...` on a pseudo-terminal, as a person at a terminal would."""
    started: list[Terminal] = []

    def start(*args: str, rows: int = 50, stdout_path: str | None = None) -> Terminal:
        term = Terminal([*CLI, *args], cwd=str(workspace), env=chat_env, rows=rows, stdout_path=stdout_path)
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()


def notifications(stdout: str) -> list[dict[str, Any]]:
    """Every line of --json output is one JSON object."""
    return [json.loads(line) for line in stdout.splitlines()]
