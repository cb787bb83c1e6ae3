"""Every path a tool takes is resolved before the decision: `..`, absolute paths
and symlinks pointing out are "outside", a NUL byte is bad input, and an
outside call is never run without a person's yes, whatever the settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from crush_ls.permissions import Permissions, granted
from crush_ls.settings import PermissionSettings
from crush_ls.tools import ToolInputError, builtin_tools
from tests.tools.inputs import CALLS

ESCAPES = ["dotdot", "absolute", "symlinked_dir", "symlinked_file"]


def escape(kind: str, workspace: Path, outside: Path) -> tuple[str, Path]:
    """(the path as the model writes it, where it really leads)."""
    if kind == "dotdot":
        return "../outside/new.txt", outside / "new.txt"
    if kind == "absolute":
        return str(outside / "new.txt"), outside / "new.txt"
    if kind == "symlinked_dir":
        os.symlink(outside, workspace / "door")
        return "door/new.txt", outside / "new.txt"
    os.symlink(outside / "new.txt", workspace / "innocent.txt")  # dangling until written
    return "innocent.txt", outside / "new.txt"


@pytest.mark.parametrize("kind", ESCAPES)
@pytest.mark.parametrize("name", list(CALLS))
async def test_escapes_are_outside(name, kind, workspace, outside, ctx):
    raw_path, real = escape(kind, workspace, outside)
    tool = builtin_tools()[name]
    access = tool.access(ctx, tool.parse(CALLS[name](raw_path)))
    assert access.inside is False
    assert access.path == str(real)


@pytest.mark.parametrize("name", list(CALLS))
async def test_a_nul_byte_is_bad_input(name, ctx):
    tool = builtin_tools()[name]
    with pytest.raises(ToolInputError, match="NUL"):
        tool.access(ctx, tool.parse(CALLS[name]("a\x00b")))


@pytest.mark.parametrize("name", list(CALLS))
async def test_inside_paths_are_inside_and_only_writes_ask(name, workspace, ctx):
    (workspace / "sub").mkdir()
    tool = builtin_tools()[name]
    access = tool.access(ctx, tool.parse(CALLS[name]("sub/../sub/f.txt")))
    assert access.inside is True and access.path == str(workspace / "sub/f.txt")
    assert access.asks_inside is (name in ("write", "edit", "multiedit"))


class NoClient:
    """A transport without a client that answers permission requests."""

    def can_ask(self) -> bool:
        return False

    async def ask(self, params: dict[str, Any]) -> Any:
        raise AssertionError("nobody may be asked")


@pytest.mark.parametrize("kind", ESCAPES)
@pytest.mark.parametrize("name", ["write", "edit", "multiedit"])
async def test_outside_writes_are_refused_even_when_allowed_by_settings(name, kind, workspace, outside, ctx):
    raw_path, real = escape(kind, workspace, outside)
    settings = PermissionSettings(mode="allow", allowed_tools=[name, f"{name}:write"])
    permissions = Permissions(settings, NoClient())
    tool = builtin_tools()[name]
    args = tool.parse(CALLS[name](raw_path))
    access = tool.access(ctx, args)
    events: list[dict[str, Any]] = []
    # What the turn loop does: decide, and run only when granted.
    assert permissions.needs_decision(access)
    decision = await permissions.decide(
        session_id=ctx.session_id, run_id=ctx.run_id, tool_call_id=ctx.tool_call_id, tool=name,
        access=access, input=CALLS[name](raw_path), emit=events.append,
    )
    if granted(decision):
        await tool.run(ctx, args)
    assert decision == "deny"
    assert [e["type"] for e in events] == ["permission_requested", "permission_resolved"]
    assert not real.exists() and os.listdir(outside) == []
