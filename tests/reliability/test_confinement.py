"""(d) Confinement and time-of-check attacks on the file tools, and probes of bash's safe list, through
the real protocol (issue 15 items 2-4): whatever the settings, with every question answered no, nothing
outside the workspace is read (neither a secret's content nor its name reaches a tool result) or
written, every run ends once, and the server goes on answering. Each probe is one run of one call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.escapes import OUTSIDE_READS, Swapper, commit_all
from tests.e2e.runs import one_call_per_prompt, racing_runs, run_each, steps
from tests.tools.inputs import CALLS

SECRET = "TOP SECRET 5f1c"
SECRET_NAME = "secret-5f1c.txt"


def tricks(outside: Path) -> list[str]:
    """Ways to name a file or folder outside the workspace (`door` and `back` are symlinks leading out)."""
    secret = outside / SECRET_NAME
    return [
        f"../{outside.name}/{SECRET_NAME}", str(secret), f"door/{SECRET_NAME}", "back", "door", "door/",
        f"./../{outside.name}/{SECRET_NAME}", f"sub/../../{outside.name}/{SECRET_NAME}", "//" + str(secret),
        str(outside) + "/./" + SECRET_NAME, str(outside) + "//" + SECRET_NAME, "..", "../", "/", "/etc",
        f"/proc/self/root{secret}", f"/proc/{os.getpid()}/cwd", "sub/../../..", "door/../" + SECRET_NAME,
        f"sub/door2/{SECRET_NAME}", f"{'../' * 30}{str(secret).lstrip('/')}", "file://" + str(secret),
        "~/" + SECRET_NAME, "door\n", " door", f"../{outside.name}",
    ]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace and, beside it, a folder with a secret; symlinks inside lead out."""
    workspace, outside = tmp_path / "ws", tmp_path / "outside-5f1c"
    (workspace / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / SECRET_NAME).write_text(SECRET + "\n")
    (workspace / "inside.txt").write_text("inside\n")
    os.symlink(outside, workspace / "door")
    os.symlink(outside, workspace / "sub" / "door2")
    os.symlink(outside / SECRET_NAME, workspace / "back")
    return workspace, outside


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leaked(results: list[dict], calls: list[dict] | None = None) -> list[str]:
    """Results holding the secret, or its name where the call did not name it (a refusal repeats the input)."""
    named = [SECRET_NAME in str(c["input"]) for c in calls] if calls else [False] * len(results)
    return [r["content"][:200] for r, echo in zip(results, named, strict=True)
            if SECRET in r["content"] or (SECRET_NAME in r["content"] and not echo)]


@pytest.mark.parametrize("mode", ["ask", "allow"])
async def test_path_tricks_on_every_file_tool_never_reach_outside_without_a_yes(start, layout, mode, capsys):
    workspace, outside = layout
    before = snapshot(outside), sorted(os.listdir(workspace.parent))
    calls = [{"name": name, "input": make(trick)} for trick in tricks(outside) for name, make in CALLS.items()]
    client = await start({"model": one_call_per_prompt(calls),
                          "permissions": {"mode": mode, "allowedTools": list(CALLS)}}, folder=workspace,
                         permissions=True)
    client.permission_answer = {"decision": "deny"}
    results = await run_each(client, len(calls))
    assert leaked(results, calls) == []
    assert (snapshot(outside), sorted(os.listdir(workspace.parent))) == before
    assert (await client.call("agent/status", {"workspace": client.ws_uri})) is not None
    with capsys.disabled():
        print(f"\nconfinement ({mode}): {len(calls)} calls, {len(client.permission_requests)} asked and denied, "
              f"0 read or written outside")


MORE_READS = [
    f"cat ../outside-5f1c/{SECRET_NAME}", f"head door/{SECRET_NAME}", "ls ..", "grep -r SECRET ..",
    f"find .. -name {SECRET_NAME}", "git -C .. log -p", "tail back", f"wc -c door/{SECRET_NAME}",
    f"sort ../outside-5f1c/{SECRET_NAME}", f"cat < ../outside-5f1c/{SECRET_NAME}", "ls -la door/",
    "echo $(cat back)", "cd .. && ls outside-5f1c", "ls -R ..", "du -a ..", "stat back", "file -L back",
    "git grep SECRET", "git ls-files ..",
]


async def test_bash_safe_list_probes_ask_before_reading_outside(start, tmp_path, capsys):
    """The workspace a folder of a larger repository (its history holds the secret), mode ask, every answer no."""
    repo = tmp_path / "repo"
    workspace, outside = repo / "ws", repo / "outside-5f1c"
    workspace.mkdir(parents=True)
    outside.mkdir()
    (outside / SECRET_NAME).write_text(SECRET + "\n")
    (workspace / "mine.txt").write_text("mine\n")
    (workspace / "list").write_bytes(f"../outside-5f1c/{SECRET_NAME}\0".encode())
    os.symlink(outside, workspace / "door")
    os.symlink(outside / SECRET_NAME, workspace / "back")
    commit_all(repo)
    probes = [c.replace("../outside/secret.txt", f"../outside-5f1c/{SECRET_NAME}") for c in OUTSIDE_READS]
    commands = [*probes, *MORE_READS]
    calls = [{"name": "bash", "input": {"command": c}} for c in commands]
    client = await start({"model": one_call_per_prompt(calls), "permissions": {"mode": "ask"}},
                         folder=workspace, permissions=True)
    client.permission_answer = {"decision": "deny"}
    results = await run_each(client, len(calls))
    assert leaked(results, calls) == [], [c["input"] for c, r in zip(calls, results) if leaked([r], [c])]
    with capsys.disabled():
        print(f"\nbash probes: {len(calls)} commands, {len(client.permission_requests)} asked and denied, "
              f"0 read outside")


VIEW = {"name": "view", "input": {"file_path": "link"}}  # an edit needs a view of the file first
RACES = {
    "edit": ("link", {"name": "edit", "input": {"file_path": "link", "old_string": "inside", "new_string": "inside!"}}),
    "multiedit": ("link", {"name": "multiedit", "input": {"file_path": "link",
                                                         "edits": [{"old_string": "inside", "new_string": "inside!"}]}}),
    "ls": ("dirlink", {"name": "ls", "input": {"path": "dirlink"}}),
    "grep": ("dirlink", {"name": "grep", "input": {"pattern": "SECRET|inside", "path": "dirlink"}}),
    "glob": ("dirlink", {"name": "glob", "input": {"pattern": "*", "path": "dirlink"}}),
}


@pytest.mark.parametrize("tool", list(RACES))
async def test_a_symlink_swapped_during_the_decision_never_leads_out(start, layout, tool):
    """view and write race in tests/e2e/test_tool_safety.py; here the other file tools."""
    workspace, outside = layout
    (workspace / "indir").mkdir()
    (workspace / "indir" / "inside.txt").write_text("inside\n")
    link, call = RACES[tool]
    inside, out = ((workspace / "inside.txt", outside / SECRET_NAME) if link == "link"
                   else (workspace / "indir", outside))
    before = snapshot(outside)
    calls = [VIEW, call] * 5 if link == "link" else [call] * 10
    client = await start({"model": steps(*calls), "permissions": {"mode": "ask", "allowedTools": [tool]}},
                         folder=workspace, permissions=True)
    client.permission_answer = {"decision": "deny"}
    # A denial ends a run, and an edit needs its view and itself both to find the link inside: about one run
    # in four gets a call through, so 30 runs make "no call ran" a one-in-5,000 event rather than one in 18.
    with Swapper(workspace / link, inside, out):
        results = await racing_runs(client, 10, 30)
    assert any(not r["isError"] for r in results if r["name"] == tool), ("no call ran", [r["content"][:150] for r in results[:3]])
    assert leaked(results) == []
    assert snapshot(outside) == before
