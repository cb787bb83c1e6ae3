"""(e) Key probes (issue 15 item 5): a model asking bash for the environment must not get the keys the
server holds, neither in a `tool_result` the client sees nor in what is stored. Only what has landed is
probed here: the provider key variables the filter knows. `$MY_LLM_TOKEN` named by a configuration,
`GITHUB_TOKEN`, `/proc/$PPID/environ` and a provider echoing its key join the list as their fixes land."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_tool_safety import one_call_per_prompt, run_each

KEYS = {"OPENAI_API_KEY": "sk-probe-openai-5f1c", "ANTHROPIC_API_KEY": "sk-ant-probe-5f1c",
        "GEMINI_API_KEY": "probe-gemini-5f1c"}
PROBES = ["env", "printenv", "set", "export -p", "echo $OPENAI_API_KEY $ANTHROPIC_API_KEY $GEMINI_API_KEY",
          "cat /proc/self/environ | tr '\\0' '\\n'", "sh -c env", "env | grep -i key"]


def stored_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (folder / ".crush").glob("crush-ls.db*"))


@pytest.fixture
def keyed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():  # the server inherits the test's environment
        monkeypatch.setenv(name, value)


async def test_bash_never_prints_the_servers_provider_keys(start, workspace, keyed_env, capsys):
    calls = [{"name": "bash", "input": {"command": c}} for c in PROBES]
    client = await start({"model": one_call_per_prompt(calls), "permissions": {"mode": "allow"}})
    results = await run_each(client, len(calls))
    assert all(not r["isError"] for r in results), [r["content"][:200] for r in results if r["isError"]]
    assert "PATH=" in results[0]["content"]  # the probe ran and printed an environment
    seen = "\n".join(str(n) for n in client.notes)
    assert [k for k, v in KEYS.items() if v in seen] == []
    await client.call("agent/status", {"workspace": client.ws_uri})
    assert [k for k, v in KEYS.items() if v.encode() in stored_bytes(workspace)] == []
    with capsys.disabled():
        print(f"\nkey probes: {len(PROBES)} commands x {len(KEYS)} keys, 0 keys seen")
