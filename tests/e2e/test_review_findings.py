"""Defects found by reviewing the core against PROTOCOL.md, each proven through the protocol."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import scripted
from tests.e2e.runs import assert_runs_end_once
from tests.e2e.test_queue import steer_script


async def test_a_folded_steered_run_id_can_be_used_again_after_it_completed(start, workspace: Path):
    # PROTOCOL: only a runId of a run that has not completed is invalid_params.
    (workspace / "notes.txt").write_text("remember the milk\n")
    client = await start({"model": steer_script()})
    session = await client.new_session()
    host = (await client.send(session, "host: read notes"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host)
    await client.send(session, "also mind the eggs", mode="steer", runId="steer-1")
    steered = await client.completed("steer-1")
    assert steered["foldedInto"] == host
    again = await client.send(session, "plain again", runId="steer-1")
    assert again["runId"] == "steer-1"
    await client.completed("steer-1")
