from __future__ import annotations

import pytest

from tests.conftest import say, scripted, server_env
from tests.e2e.runs import steps


async def test_prompt_streams_and_completes(start):
    client = await start({"model": scripted(say("Hello from the script", chunk=5))})
    session = await client.new_session()
    result = await client.send(session, "hi")
    assert result["accepted"] is True and result["queued"] is False
    done = await client.completed(result["runId"])
    assert done["finishReason"] == "end_turn"
    assert done["text"] == "Hello from the script"
    assert client.text_of(result["runId"]) == "Hello from the script"
    print(client.types_of(result["runId"]))


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_a_turn_with_a_command_and_a_search_runs_on_either_event_loop(start, workspace, loop):
    """The server runs on uvloop when installed; CRUSH_LS_LOOP=asyncio keeps the standard library's
    loop. Both must stream, run child processes (bash, the search worker) and end the run."""
    (workspace / "found.py").write_text("x = 1\n")
    model = steps({"name": "bash", "input": {"command": "echo from-bash"}}, {"name": "glob", "input": {"pattern": "*.py"}},
                  text="both ran")
    client = await start({"model": model, "permissions": {"mode": "allow"}}, env=server_env(CRUSH_LS_LOOP=loop))
    session = await client.new_session()
    run_id = (await client.send(session, "go"))["runId"]
    done = await client.completed(run_id)
    assert done["finishReason"] == "end_turn" and done["text"] == "both ran"
    bash, glob = [n for n in client.of_run(run_id) if n["type"] == "tool_result"]
    assert not bash["isError"] and bash["content"].strip().endswith("from-bash"), bash["content"]
    assert not glob["isError"] and glob["content"] == "found.py", glob["content"]
    assert client.types_of(run_id)[-1] == "run_complete"
