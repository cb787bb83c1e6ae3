from __future__ import annotations

from tests.conftest import say, scripted


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
