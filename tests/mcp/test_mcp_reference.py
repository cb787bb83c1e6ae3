"""Real reference servers from PyPI over stdio: mcp-server-time and mcp-server-git.

The scripted model calls their tools through the real protocol: the tool
list, a call and its result, permission asked and denied, allowedTools in
each spelling, enabled_tools / disabled_tools filtering what the model sees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import scripted
from tests.e2e.runs import assert_runs_end_once
from tests.mcp.helpers import call_then_say, options, run, servers, stdio, tool_results, wait_state

TIME = {"time": stdio("-m", "mcp_server_time", "--local-timezone", "UTC")}
NOW = ("mcp_time_get_current_time", {"timezone": "UTC"})


def git_repo(folder: Path) -> Path:
    repo = folder / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(folder), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "committed.txt").write_text("one\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "first commit"], check=True, env=env)
    (repo / "untracked.txt").write_text("two\n")
    return repo


async def test_time_server_tools_are_listed_and_called(start):
    client = await start(options(TIME, call_then_say(*NOW)))
    state = await wait_state(client, "time", "connected", "failed")
    assert state["state"] == "connected", state
    names = {t["name"] for t in state["tools"]}
    assert names == {"mcp_time_get_current_time", "mcp_time_convert_time"}
    assert all(t["description"] for t in state["tools"])
    listed = await servers(client)
    assert listed["time"]["type"] == "stdio" and listed["time"]["error"] is None
    run_id, complete = await run(client)
    assert complete["finishReason"] == "end_turn", complete
    (result,) = tool_results(client, run_id)
    assert result["name"] == "mcp_time_get_current_time" and result["isError"] is False
    assert '"timezone": "UTC"' in result["content"], result
    assert result["metadata"]["server"] == "time"
    assert result["metadata"]["structuredContent"]["timezone"] == "UTC"
    assert_runs_end_once(client.notes)


async def test_git_server_on_a_temporary_repository(start, workspace):
    repo = git_repo(workspace)
    git = {"git": stdio("-m", "mcp_server_git", "--repository", str(repo))}
    client = await start(options(git, scripted(
        {"step": 0, "events": [{"toolCall": {"name": "mcp_git_git_status", "input": {"repo_path": str(repo)}}}]},
        {"step": 1, "events": [{"toolCall": {"name": "mcp_git_git_log", "input": {"repo_path": str(repo)}}}]},
        {"step": 2, "events": [{"text": "seen"}]},
    )))
    state = await wait_state(client, "git", "connected", "failed")
    assert state["state"] == "connected", state
    assert {"mcp_git_git_status", "mcp_git_git_log", "mcp_git_git_commit"} <= {t["name"] for t in state["tools"]}
    run_id, complete = await run(client)
    assert complete["text"] == "seen"
    status, log = tool_results(client, run_id)
    assert status["isError"] is False and "untracked.txt" in status["content"], status
    assert log["isError"] is False and "first commit" in log["content"], log


async def test_a_call_asks_naming_server_tool_and_arguments_and_a_denial_stops_it(start):
    client = await start(options(TIME, call_then_say(*NOW), mode="ask"), permissions=True)
    client.permission_answer = {"decision": "deny"}
    await wait_state(client, "time", "connected")
    run_id, complete = await run(client)
    (asked,) = client.permission_requests
    permission = asked["permission"]
    assert permission["tool"] == "mcp_time_get_current_time" and permission["action"] == "execute"
    assert permission["input"] == {"timezone": "UTC"}
    assert "time" in permission["description"] and "get_current_time" in permission["description"]
    assert '"timezone": "UTC"' in permission["description"]
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True and "Permission denied" in result["content"]
    assert complete["finishReason"] == "end_turn" and complete["text"] == ""  # the turn stopped at the denial
    assert_runs_end_once(client.notes)


@pytest.mark.parametrize("allowed", ["mcp_time_get_current_time", "mcp_time_*", "mcp__time__get_current_time",
                                     "mcp_time_get_current_time:execute"])
async def test_allowed_tools_in_each_spelling_need_no_person(start, allowed):
    client = await start(options(TIME, call_then_say(*NOW), mode="ask", allowedTools=[allowed]), permissions=True)
    client.permission_answer = {"decision": "deny"}
    await wait_state(client, "time", "connected")
    run_id, complete = await run(client)
    assert client.permission_requests == []
    (result,) = tool_results(client, run_id)
    assert result["isError"] is False and complete["text"] == "done"


async def test_another_servers_wildcard_does_not_allow(start):
    client = await start(options(TIME, call_then_say(*NOW), mode="ask", allowedTools=["mcp_git_*", "mcp__tim__*"]),
                         permissions=True)
    client.permission_answer = {"decision": "deny"}
    await wait_state(client, "time", "connected")
    await run(client)
    assert len(client.permission_requests) == 1


async def test_disabled_tools_are_hidden_from_the_model(start):
    hidden = {"time": {**TIME["time"], "disabled_tools": ["get_current_time"]}}
    client = await start(options(hidden, call_then_say(*NOW)))
    state = await wait_state(client, "time", "connected")
    assert [t["name"] for t in state["tools"]] == ["mcp_time_convert_time"]
    run_id, complete = await run(client)
    (result,) = tool_results(client, run_id)
    assert result["isError"] is True and "Unknown tool 'mcp_time_get_current_time'" in result["content"]
    assert "mcp_time_convert_time" in result["content"]  # the tools the model has are named


async def test_enabled_tools_keep_only_those(start):
    only = {"time": {**TIME["time"], "enabled_tools": ["get_current_time"]}}
    client = await start(options(only))
    state = await wait_state(client, "time", "connected")
    assert [t["name"] for t in state["tools"]] == ["mcp_time_get_current_time"]
