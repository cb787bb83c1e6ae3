"""Command line of `crush-ls chat` and `crush-ls sessions`, and the initializationOptions it means."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PROVIDERS = ("local", "openai", "anthropic", "scripted", "echo")


class UsageError(Exception):
    pass


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cwd", metavar="DIR", help="the workspace folder (default: the current directory)")
    parser.add_argument("-m", "--model", metavar="PROVIDER[:MODEL]",
                        help=f"model to use, e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5, "
                             f"local, echo, scripted (providers: {', '.join(PROVIDERS)})")
    parser.add_argument("--script", metavar="FILE", help="script for the scripted provider (implies -m scripted)")
    parser.add_argument("--init-options", metavar="JSON|@FILE",
                        help="initializationOptions sent to the server (flags override its keys)")
    parser.add_argument("--json", action="store_true",
                        help="print every agent/notification as one JSON line (NDJSON), nothing else on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the server's log on stderr")


def chat_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crush-ls chat",
        description="Talk to the crush-ls agent from a terminal. With a PROMPT: one turn, then exit "
                    "(0 end_turn, 1 error, 3 max_tokens/content_filter/unknown, 130 canceled). "
                    "Without: an interactive loop (Enter sends, Esc-Enter or a trailing \\ adds a line, "
                    "Ctrl-C cancels the turn, a second Ctrl-C or Ctrl-D quits). "
                    "A prompt can also come on standard input.",
    )
    parser.add_argument("prompt", nargs="*", help="the prompt (words are joined with spaces)")
    _common(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-c", "--continue", dest="continue_", action="store_true",
                       help="continue the folder's most recent session")
    which.add_argument("-s", "--session", metavar="ID", help="continue the session ID")
    parser.add_argument("--yolo", action="store_true", help="allow every tool call without asking")
    return parser


def sessions_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crush-ls sessions",
        description="List the sessions of a folder, newest first; `show [ID]` prints one session "
                    "(the newest without ID).",
    )
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("session_id", nargs="?", metavar="ID")
    _common(parser)
    return parser


def parse_model(spec: str) -> dict[str, Any]:
    """`provider` or `provider:model` (the model id may itself contain colons)."""
    provider, _, model = spec.partition(":")
    if not provider:
        raise UsageError(f"--model wants PROVIDER[:MODEL], got {spec!r}")
    return {"provider": provider, **({"model": model} if model else {})}


def _load_json(value: str) -> Any:
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--init-options: cannot read {value[1:]}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--init-options is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError("--init-options must be a JSON object")
    return data


def init_options(args: argparse.Namespace) -> dict[str, Any]:
    """initializationOptions from `--init-options`, then `--model`, `--script` and `--yolo` over it."""
    options: dict[str, Any] = _load_json(args.init_options) if args.init_options else {}
    if args.model:
        options["model"] = parse_model(args.model)
    if args.script:
        model = options.get("model") if args.model else None
        options["model"] = {**(model or {"provider": "scripted"}),
                            "scriptPath": str(Path(args.script).resolve())}
    if getattr(args, "yolo", False):
        options["permissions"] = {**options.get("permissions", {}), "mode": "allow"}
    return options


def workspace_folder(args: argparse.Namespace) -> Path:
    folder = Path(args.cwd or ".").expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--cwd: {folder} is not a directory")
    return folder
