"""`crush-ls acp`: the crush-ls agent over the Agent Client Protocol (ACP v1) on stdio.

The same backend, coordinator, storage, providers, tools and permissions as
the LSP-framed server, for every ACP client (Zed, JetBrains, CodeCompanion,
avante, acpx). Newline-delimited JSON-RPC: nothing but ACP messages on
stdout; logs go to stderr. See docs/acp.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

EOF_CLOSE_TIMEOUT = 1.5  # end of input: the process is gone within 2 s, as the LSP server's


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crush-ls acp",
        description="Serve the Agent Client Protocol (v1, newline-delimited JSON-RPC) on stdin/stdout. "
                    "Each session's workspace is the cwd of its session/new.",
    )
    parser.add_argument("-m", "--model", metavar="PROVIDER[:MODEL]",
                        help="model to use, e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5, local, echo, "
                             "scripted (default: crush.json's models.large)")
    parser.add_argument("--script", metavar="FILE", help="script for the scripted provider (implies -m scripted)")
    parser.add_argument("--init-options", metavar="JSON|@FILE",
                        help="crush-ls initializationOptions (flags override its keys)")
    parser.add_argument("--yolo", action="store_true", help="allow every tool call inside the workspace without asking")
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    parser.add_argument("--check", action="store_true",
                        help="run `crush-ls doctor`'s checks for the cwd with these flags, print them and exit "
                             "(1 when something is wrong): why a client shows \"agent failed to start\"")
    return parser


def main(argv: list[str]) -> int:
    from ..chat.options import UsageError, init_options  # the flags mean what they mean for `crush-ls chat`
    from ..protocol.errors import CrushError
    from ..settings import parse_init_options

    args = parser().parse_args(argv)
    if args.check:
        return check(args)
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout belongs to ACP: a stray print() goes to stderr
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = parse_init_options(init_options(args))
    except (UsageError, CrushError) as exc:
        print(f"crush-ls acp: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    from ..transport.framing import JsonLines, max_frame_from_env
    from ..transport.stdio import serve_stdio
    from .stdio import AcpPeer

    return serve_stdio(AcpPeer(settings), sys.stdin.buffer, protocol_out, JsonLines(max_frame_from_env()))


def check(args: argparse.Namespace) -> int:
    """`--check`: the doctor's report for the cwd, with the model the flags choose."""
    from pathlib import Path

    from ..chat.options import UsageError, init_options
    from ..doctor import check_and_print
    from ..protocol.errors import CrushError
    from ..settings import parse_init_options

    try:
        given = parse_init_options(init_options(args))
    except (UsageError, CrushError) as exc:
        print(f"crush-ls acp: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    return check_and_print(Path.cwd(), given)
