"""Command line: `crush-ls` serves the protocol; `crush-ls chat` / `sessions` are clients of it."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    import argparse


def _serve_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="crush-ls",
        description="Serve the crush-ls agent protocol (JSON-RPC with LSP framing) on stdio or TCP.",
        epilog="Subcommands: `crush-ls chat [PROMPT]` talks to the agent from a terminal; "
        "`crush-ls sessions [show ID]` lists the sessions of a folder; "
        "`crush-ls acp` serves the Agent Client Protocol (Zed, JetBrains, CodeCompanion, acpx) on stdio.",
    )
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="serve one client on a TCP socket instead")
    parser.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    parser.add_argument("--version", action="version", version=f"crush-ls {__version__}")
    return parser


def _serve_options(args: list[str]) -> Any:
    """The flags of `crush-ls` (serve); none at all, or only --stdio, is what editors start it with:
    the defaults then, without building the parser (argparse and what it imports: ~5 ms of start-up)."""
    if all(arg == "--stdio" for arg in args):
        from types import SimpleNamespace

        return SimpleNamespace(stdio=bool(args), tcp=None, log_level="INFO")
    return _serve_parser().parse_args(args)


def _parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"crush-ls: --tcp wants HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _one_line_from_pygls(record: logging.LogRecord) -> bool:
    """pygls logs a traceback for input it refuses (a refused `initialize`, a notification with bad
    params), which crush-ls answers or drops with its own one line: keep pygls' to one line too."""
    if not record.name.startswith("pygls"):
        return True
    from pygls.exceptions import JsonRpcException

    if record.exc_info and isinstance(record.exc_info[1], JsonRpcException):
        return False  # an answered error: crush-ls logged it
    record.msg, record.args = record.getMessage().split("\n", 1)[0], ()
    record.exc_info = record.exc_text = None
    return True


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "doctor":
        from .doctor import main as doctor_main

        raise SystemExit(doctor_main(args[1:]))
    if args and args[0] in ("chat", "sessions"):
        from .chat import main as chat_main  # the terminal client, imported only when used

        raise SystemExit(chat_main(args))
    if args and args[0] == "acp":
        from .acp import main as acp_main  # the Agent Client Protocol server, imported only when used

        raise SystemExit(acp_main(args[1:]))
    options = _serve_options(args)
    # stdout belongs to JSON-RPC: keep its buffer for the protocol, send print() to stderr.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    logging.basicConfig(
        level=options.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pygls").setLevel(logging.WARNING)  # pygls logs every body at INFO
    for handler in logging.getLogger().handlers:  # a logger's own filter would miss pygls' child loggers
        handler.addFilter(_one_line_from_pygls)

    from .startup import loading, save_code_cache

    with loading("serve"):
        from .server import server
        from .settings.secrets import hide_process_environment
        from .transport.stdio import serve_stdio, serve_tcp

    hide_process_environment()  # commands run for the model must not read keys from /proc/<server>/environ

    if options.tcp:
        code = serve_tcp(server, *_parse_host_port(options.tcp))
    else:
        code = serve_stdio(server, sys.stdin.buffer, protocol_out)
    save_code_cache()  # what was compiled once serving (initialize's structure functions, a turn's classes)
    # Everything is closed and written: skip the interpreter's teardown of every module
    # (up to a second with the MCP SDK loaded, on a busy machine): the process must be
    # gone within 2 s of the end of its input.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)
