"""`crush-ls chat` (one turn, or the interactive loop) and `crush-ls sessions`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from .app import EXIT_CANCELED, EXIT_ERROR, EXIT_OK, EXIT_USAGE, ChatApp, exit_code, print_server_exit
from .child import AgentServer, ServerExited
from .options import init_options, workspace_folder
from .rpc import RpcError
from .view import JsonView, TerminalView, context_place, render_transcript, session_header, sessions_table

HELP = """\
Enter sends · Esc-Enter or a trailing \\ adds a line · Ctrl-C cancels the turn · Ctrl-D quits
/new  start a new session          /sessions  list this folder's sessions
/session ID  switch to a session   /model [PROVIDER:MODEL]  show or change the model
/changes [PATH]  files changed, a diff   /rewind [N]  list prompts, go back before prompt N
/unrewind  undo the last rewind    /unqueue  take back the last queued prompt
/add PATH[:FROM-TO]  send a file (or its lines) with the next prompt · /add  list · /drop  forget them
/help  this text                   /exit  quit"""


@contextlib.asynccontextmanager
async def running_server(app: ChatApp) -> AsyncIterator[None]:
    """Start the child, hand its messages to `app`, and always stop it (even on Ctrl-C)."""
    await app.server.start()
    app.attach()
    try:
        yield
    finally:
        app.detach()
        try:
            await app.server.stop()
        except asyncio.CancelledError:
            app.server.kill()


def text_view(app: ChatApp) -> TerminalView:
    """The view of a command that shows text: never a --json one."""
    assert isinstance(app.view, TerminalView), "a text command run with --json"
    return app.view


async def guarded(app: ChatApp, body: Callable[[], Awaitable[int]]) -> int:
    """Run `body`, turning protocol errors, a dead server and Ctrl-C into exit codes."""
    try:
        async with running_server(app):
            return await body()
    except RpcError as exc:
        app.view.error(exc.message)
        return EXIT_ERROR
    except ServerExited as exc:
        print_server_exit(app.view, exc)
        return EXIT_ERROR
    except asyncio.CancelledError:
        return EXIT_CANCELED


# -- chat ------------------------------------------------------------------------


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()  # None: started with fd 0 closed


def read_prompt(args: argparse.Namespace) -> str:
    prompt = " ".join(args.prompt).strip()
    if not prompt and sys.stdin is not None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    return prompt


async def chat(args: argparse.Namespace) -> int:
    folder = workspace_folder(args)
    options = init_options(args)
    view = JsonView() if args.json else TerminalView()
    prompt = read_prompt(args)
    if not prompt and (args.json or not stdin_is_terminal()):
        view.error("crush-ls chat: no prompt given (pass one as an argument or on standard input)")
        return EXIT_USAGE
    app = ChatApp(AgentServer(folder, forward_stderr=args.verbose), view, yolo=args.yolo)

    async def body() -> int:
        # Only a person at a terminal (or --yolo) can answer permission requests.
        await app.server.initialize(options, permissions=args.yolo or stdin_is_terminal())
        await app.open_session(session_id=args.session, latest=args.continue_)
        if not prompt:
            return await interactive(app)
        complete = await app.run_turn(prompt)
        return exit_code(complete.get("finishReason", "unknown"))

    return await guarded(app, body)


async def interactive(app: ChatApp) -> int:
    from .ask import PromptReader

    view = text_view(app)  # the loop is never in --json mode
    reader = PromptReader()
    await print_banner(app)
    while True:
        try:
            text = (await reader.read()).strip()
        except EOFError:  # Ctrl-D
            return EXIT_OK
        except KeyboardInterrupt:  # Ctrl-C on an empty line, e.g. right after cancelling a turn
            return EXIT_CANCELED
        if not text:
            continue
        try:
            if text.startswith("/"):
                if await slash_command(app, text) == "exit":
                    return EXIT_OK
            else:
                await app.run_turn(text)
        except RpcError as exc:
            view.error(exc.message)


async def print_banner(app: ChatApp) -> None:
    view = text_view(app)
    view.console.print(Text(f"crush-ls · {await model_name(app)} · {app.server.folder}", style="bold"))
    view.info(f"session {app.session_id}")
    view.info(HELP)


async def model_name(app: ChatApp) -> str:
    try:
        current = (await app.server.ws_call("agent/models")).get("current") or {}
    except RpcError as exc:
        return f"no model ({exc.reason})"
    return f"{current.get('provider')}:{current.get('model')}"


async def slash_command(app: ChatApp, line: str) -> str | None:
    view = text_view(app)
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name in ("exit", "quit", "q"):
        return "exit"
    if name == "new":
        await app.open_session()
        view.info(f"new session {app.session_id}")
    elif name == "sessions":
        view.console.print(sessions_table((await app.server.ws_call("session/list")).get("sessions") or []))
    elif name == "session" and arg:
        await app.open_session(session_id=arg)
        view.info(f"session {app.session_id}")
    elif name in ("changes", "rewind", "unrewind", "unqueue"):
        from . import review

        await (review.unqueue(app) if name == "unqueue" else getattr(review, name)(app, arg))
    elif name == "add":
        if arg:
            try:
                app.context.append(context_item(app.server.folder, arg))
            except ValueError as exc:
                view.error(str(exc))
        view.info("with the next prompt: " + (", ".join(context_label(c, app.server.folder) for c in app.context)
                                              or "nothing"))
    elif name == "drop":
        app.context = []
        view.info("with the next prompt: nothing")
    elif name == "model":
        if arg:
            from .options import UsageError, parse_model

            try:
                await app.server.ws_call("agent/setModel", model=parse_model(arg))
            except UsageError as exc:
                view.error(str(exc))
        view.info(f"model {await model_name(app)}")
    else:
        if name != "help":
            view.error(f"unknown command /{name}")
        view.info(HELP)
    return None


def context_item(folder: Path, arg: str) -> dict[str, Any]:
    """`/add src/app.py` (the file) or `/add src/app.py:12-20` (those lines, one-based) as a context item."""
    path_text, lines = arg, ""
    if ":" in arg and arg.rpartition(":")[2].replace("-", "").isdigit():
        path_text, _, lines = arg.rpartition(":")
    path = (folder / Path(path_text).expanduser()).resolve()
    if not path.is_file():
        raise ValueError(f"/add: {path_text} is not a file")
    if not lines:
        return {"uri": path.as_uri(), "kind": "file"}
    first, _, last = lines.partition("-")
    start, end = int(first), int(last or first)
    if start < 1 or end < start:
        raise ValueError(f"/add: {lines} is not a range of lines (FROM-TO, from 1)")
    return {"uri": path.as_uri(), "kind": "selection",
            "range": {"start": {"line": start - 1, "character": 0}, "end": {"line": end, "character": 0}}}


def context_label(item: dict[str, Any], folder: Path) -> str:
    path = Path(item["uri"].removeprefix("file://"))
    shown = str(path.relative_to(folder.resolve())) if path.is_relative_to(folder.resolve()) else str(path)
    return context_place({**item, "path": shown})


# -- sessions ----------------------------------------------------------------------


async def sessions(args: argparse.Namespace) -> int:
    folder = workspace_folder(args)
    view = JsonView() if args.json else TerminalView()
    options = init_options(args)
    app = ChatApp(AgentServer(folder, forward_stderr=args.verbose), view)

    async def body() -> int:
        await app.server.initialize(options, permissions=False)
        if args.action == "show":
            session_id = args.session_id or await newest_session_id(app)
            if session_id is None:
                view.error(f"crush-ls sessions show: {folder} has no sessions yet")
                return EXIT_ERROR
            await show_session(app, session_id, as_json=args.json)
        else:
            listed = await app.server.ws_call("session/list")
            if isinstance(view, JsonView):
                print_json(listed)
            else:
                view.console.print(sessions_table(listed.get("sessions") or []))
        return EXIT_OK

    return await guarded(app, body)


async def newest_session_id(app: ChatApp) -> str | None:
    sessions = (await app.server.ws_call("session/list")).get("sessions") or []
    return sessions[0]["id"] if sessions else None


async def show_session(app: ChatApp, session_id: str, *, as_json: bool) -> None:
    session = await app.server.ws_call("session/get", sessionId=session_id)
    messages = (await app.server.ws_call("session/messages", sessionId=session_id)).get("messages") or []
    if as_json:
        print_json({"session": session, "messages": messages})
        return
    console = text_view(app).console
    console.print(session_header(session), soft_wrap=True)
    for part in render_transcript(messages):
        console.print(part)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
