"""(e) Key probes (issue 15 item 5): a model asking bash for the environment must not get the keys the
server holds, neither in a `tool_result` the client sees nor in what is stored: the provider key
variables, a variable only the configuration names as a key (`apiKey: "$LLM_GATEWAY_K"`), secret-looking
names (`GITHUB_TOKEN`), the server's own environment through `/proc/$PPID/environ`, and a key written
in a file of the workspace (redacted from the output). tests/e2e/test_keys.py has the single case."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import server_env
from tests.e2e.runs import one_call_per_prompt, run_each

KEYS = {"OPENAI_API_KEY": "sk-probe-openai-5f1c", "ANTHROPIC_API_KEY": "sk-ant-probe-5f1c",
        "GEMINI_API_KEY": "probe-gemini-5f1c", "GITHUB_TOKEN": "ghp_probe5f1c0123456789",
        "LLM_GATEWAY_K": "gateway-probe-5f1c"}
# A small model that is never called: its apiKey names the variable that holds a key.
SMALL = {"provider": "openai", "model": "gateway-small", "baseUrl": "http://127.0.0.1:9/v1",
         "apiKey": "$LLM_GATEWAY_K"}
PROBES = ["env", "printenv", "set", "export -p", "echo $OPENAI_API_KEY $GITHUB_TOKEN $LLM_GATEWAY_K",
          "cat /proc/self/environ | tr '\\0' '\\n'", "sh -c env", "env | grep -i -e key -e token",
          "tr '\\0' '\\n' < /proc/$PPID/environ", "strings /proc/$PPID/environ", "cat keys.txt",
          "grep -r probe .", "od -c /proc/$PPID/environ | head -200"]


def stored_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (folder / ".crush").glob("crush-ls.db*"))


async def test_bash_never_prints_a_key_the_server_holds(start, workspace, capsys):
    (workspace / "keys.txt").write_text("".join(f"{name}={value}\n" for name, value in KEYS.items()))
    calls = [{"name": "bash", "input": {"command": c}} for c in PROBES]
    client = await start({"model": one_call_per_prompt(calls), "smallModel": SMALL,
                          "permissions": {"mode": "allow"}}, env=server_env(**KEYS))
    results = await run_each(client, len(calls))
    assert "PATH=" in results[0]["content"]  # the probe ran and printed an environment
    seen = "\n".join(str(n) for n in client.notes)
    assert [k for k, v in KEYS.items() if v in seen] == []
    await client.call("agent/status", {"workspace": client.ws_uri})
    assert [k for k, v in KEYS.items() if v.encode() in stored_bytes(workspace)] == []
    with capsys.disabled():
        print(f"\nkey probes: {len(PROBES)} commands x {len(KEYS)} keys, 0 keys seen")
