"""`crush-ls chat` and `crush-ls sessions`: a terminal client of the crush-ls server.

It starts `python -m crush_ls` as a child process and speaks PROTOCOL.md to
it over the child's stdio, exactly as an editor would: the reference harness
for anyone scripting the server. See docs/chat.md.
"""

from __future__ import annotations

import asyncio
import sys


def main(argv: list[str]) -> int:
    """argv[0] is "chat" or "sessions"; returns the process exit code."""
    from .commands import chat, sessions
    from .options import UsageError, chat_parser, sessions_parser

    command, rest = argv[0], argv[1:]
    parser = chat_parser() if command == "chat" else sessions_parser()
    args = parser.parse_intermixed_args(rest) if command == "chat" else parser.parse_args(rest)
    try:
        return asyncio.run(chat(args) if command == "chat" else sessions(args))
    except UsageError as exc:
        print(f"crush-ls {command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a Ctrl-C before the client took SIGINT over
        return 130
