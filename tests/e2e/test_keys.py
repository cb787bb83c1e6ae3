"""API keys never reach what a command sees or prints (the issue's key-leak probes), through the real server.

A command run for the model gets no key variable in its environment, cannot
read keys from the server's own environment (`/proc/$PPID/environ`, even
encoded), and any key value in tool output is redacted before it is sent or
stored. docs/tools.md (bash) says what a command can still see.
"""

from __future__ import annotations

import base64
from pathlib import Path

from tests.conftest import read_db, scripted, server_env

# LLM_GATEWAY_K looks like no secret by its name: only the configuration says it holds a key.
KEYS = {
    "LLM_GATEWAY_K": "gateway-key-0123456789abcdef",
    "GITHUB_TOKEN": "ghp_tokenvalue0123456789abcdef",
    "OPENAI_API_KEY": "sk-openai-0123456789abcdef",
}
PROBE = ("env; echo ---; tr '\\0' '\\n' < /proc/$PPID/environ; echo ---; base64 -w0 /proc/$PPID/environ; echo; "
         "echo ---; cat notes.txt; echo ---; grep -l -a -F -f .keys /proc/[0-9]*/environ 2>/dev/null; echo scanned")


def everything_stored(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (folder / ".crush").glob("crush-ls.db*"))


async def test_commands_see_and_print_no_key(start, workspace: Path):
    (workspace / "notes.txt").write_text(f"the gateway key is {KEYS['LLM_GATEWAY_K']}\n")
    (workspace / ".keys").write_text("\n".join(KEYS.values()) + "\n")  # what grep looks for: never printed
    model = scripted({"step": 0, "events": [{"toolCall": {"name": "bash", "input": {"command": PROBE}}}]},
                     {"step": 1, "events": [{"text": "done"}]})
    small = {"provider": "openai", "model": "gateway-small", "baseUrl": "http://127.0.0.1:9/v1",
             "apiKey": "$LLM_GATEWAY_K"}
    client = await start({"model": model, "smallModel": small, "permissions": {"mode": "allow"}},
                         env=server_env(**KEYS, HARMLESS_SETTING="visible"))
    session = await client.new_session()
    run_id = (await client.send(session, "probe the environment"))["runId"]
    assert (await client.completed(run_id))["finishReason"] == "end_turn"
    (result,) = [n for n in client.of_run(run_id) if n["type"] == "tool_result"]
    content = result["content"]
    environment, proc_environ, encoded, notes, holders = content.split("---")
    decoded = base64.b64decode(encoded.strip()).decode(errors="replace")
    for name, value in KEYS.items():
        assert f"{name}=" not in environment  # not in the command's environment
        assert value not in content and value not in decoded, name  # nor readable from the server's
    assert "HARMLESS_SETTING=visible" in environment and "HARMLESS_SETTING=visible" in decoded
    assert "HARMLESS_SETTING=visible" in proc_environ
    assert notes.strip() == "the gateway key is ***"  # a key in a file is redacted from the output
    # No process the server started (the command, its reaper) holds a key in its environment either.
    assert holders.split() == ["scanned"]
    await client.shutdown_session()
    stored = everything_stored(workspace)
    assert b"the gateway key is ***" in stored or "the gateway key is ***" in str(read_db(workspace))
    for value in KEYS.values():
        assert value.encode() not in stored
