"""The chat loop's /changes, /rewind, /unrewind and /unqueue (agent/changes, agent/rewind,
agent/unrewind, agent/popQueue): what the agent changed, and taking turns back."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from .app import ChatApp
from .view import TerminalView

STATUS_MARK = {"added": "A", "modified": "M", "deleted": "D"}


def _view(app: ChatApp) -> TerminalView:
    view = app.view
    assert isinstance(view, TerminalView)  # the loop is never in --json mode
    return view


async def changes(app: ChatApp, arg: str) -> None:
    """/changes: the session's changed files with +/- counts; /changes PATH: that file's diff."""
    view = _view(app)
    files: list[dict[str, Any]] = (await app.server.ws_call("agent/changes", sessionId=app.session_id))["files"]
    if not files:
        view.info("the agent has changed no file in this session")
        return
    if arg:
        chosen = next((f for f in files if f["path"] == arg), None)
        if chosen is None:
            view.error(f"/changes: the agent did not change {arg} (changed: {', '.join(f['path'] for f in files)})")
            return
        for line in chosen["diff"].splitlines() or ["(no text diff: binary or too large)"]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" \
                if line.startswith("@@") else ""
            view.console.print(Text(line, style=style), soft_wrap=True)
        return
    for f in files:
        line = Text(f"{STATUS_MARK[f['status']]} {f['path']}  ")
        line.append(f"+{f['additions']}", style="green")
        line.append(" ")
        line.append(f"-{f['removals']}", style="red")
        view.console.print(line, soft_wrap=True)
    view.info("/changes PATH shows a file's diff")


async def _user_messages(app: ChatApp) -> list[dict[str, Any]]:
    messages = (await app.server.ws_call("session/messages", sessionId=app.session_id))["messages"]
    return [m for m in messages if m["role"] == "user"]


def _first_line(message: dict[str, Any]) -> str:
    text = "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text").strip()
    return text.splitlines()[0][:70] if text else "(no text)"


def _report(view: TerminalView, result: dict[str, Any], messages: str) -> None:
    for restored in result["restored"]:
        view.info(f"{restored['action']} {restored['path']}")
    for conflict in result["conflicts"]:
        view.error(f"left {conflict['path']} as it is: {conflict['reason']}")
    view.info(messages)


async def rewind(app: ChatApp, arg: str) -> None:
    """/rewind: number the prompts; /rewind N [force]: go back to just before prompt N."""
    view = _view(app)
    prompts = await _user_messages(app)
    number, _, flag = arg.partition(" ")
    if not number:
        if not prompts:
            view.info("nothing to rewind: no prompt in this session")
            return
        for index, message in enumerate(prompts, start=1):
            view.console.print(Text(f"{index:3}  {_first_line(message)}"), soft_wrap=True)
        view.info("/rewind N takes the session back to just before prompt N (files and messages); "
                  "/unrewind undoes it")
        return
    if not number.isdigit() or not 1 <= int(number) <= len(prompts):
        view.error(f"/rewind: give a prompt number from 1 to {len(prompts)} (/rewind lists them)")
        return
    target = prompts[int(number) - 1]
    result = await app.server.ws_call("agent/rewind", sessionId=app.session_id, messageId=target["id"],
                                      force=flag.strip() == "force")
    _report(view, result, f"rewound to before prompt {number}: {result['hiddenMessages']} messages hidden"
                          + (" (/rewind N force overwrites the files left as they are)" if result["conflicts"] else ""))


async def unrewind(app: ChatApp, arg: str) -> None:
    view = _view(app)
    result = await app.server.ws_call("agent/unrewind", sessionId=app.session_id, force=arg == "force")
    _report(view, result, f"rewind undone: {result['shownMessages']} messages back")


async def unqueue(app: ChatApp) -> None:
    """/unqueue: take back the last prompt waiting in the session's queue (another client's)."""
    view = _view(app)
    taken = await app.server.ws_call("agent/popQueue", sessionId=app.session_id)
    if taken["prompt"] is None:
        view.info("nothing is queued")
    else:
        view.info("taken back from the queue:")
        view.console.print(Text(taken["prompt"]), soft_wrap=True)
