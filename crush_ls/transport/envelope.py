"""The JSON-RPC 2.0 envelope: which bodies are messages, and the answers to those that are not.

Every malformed request is answered (with its id when it has a usable one);
a malformed notification is dropped with a log line. What is inside `params`
is not looked at here: that is the handler's business.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .framing import FrameError

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
CANCEL_REQUEST = "$/cancelRequest"


def error_response(msg_id: Any, code: int, message: str, reason: str = "invalid_request") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message, "data": {"reason": reason}}}


def valid_id(msg_id: Any) -> bool:
    return msg_id is None or (isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool))


def is_request(data: dict[str, Any]) -> bool:
    return "id" in data and "method" in data


def problem(data: Any) -> str | None:
    """Why a parsed body is not a JSON-RPC 2.0 message, or None."""
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        return "expected a JSON-RPC 2.0 object"
    if "method" in data and not isinstance(data["method"], str):
        return "`method` must be a string"
    if "id" in data and not valid_id(data["id"]):
        return "`id` must be a string or an integer"
    if data.get("method") == CANCEL_REQUEST:
        params = data.get("params")
        if not isinstance(params, dict) or params.get("id") is None or not valid_id(params["id"]):
            return "$/cancelRequest needs params.id, a string or an integer"
    return None


def parse(body: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(message, None) for a well-formed message; else (None, the answer to send, or None)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return None, error_response(None, PARSE_ERROR, f"Parse error: the body is not JSON ({type(exc).__name__}).")
    why = problem(data)
    if why is None:
        return data, None
    if isinstance(data, dict) and "method" in data and "id" not in data:
        log.warning("dropped a malformed notification: %s", why)
        return None, None
    msg_id = data.get("id") if isinstance(data, dict) else None
    return None, error_response(msg_id if valid_id(msg_id) else None, INVALID_REQUEST, f"Invalid request: {why}.")


def frame_error_response(error: FrameError) -> dict[str, Any]:
    """The answer to bytes that are not a frame (a parse error) or to a frame refused for its size."""
    if error.too_large:
        log.warning("refused a frame: %s", error.message)
        return error_response(error.msg_id, INVALID_REQUEST, f"Invalid request: {error.message}.")
    log.warning("framing error, resynchronising on the next header: %s", error.message)
    return error_response(None, PARSE_ERROR, f"Parse error: {error.message}.")


def internal_error(data: dict[str, Any], exc: BaseException) -> dict[str, Any] | None:
    """The answer when handling a request raised (None for anything that is not a request)."""
    if not is_request(data):
        return None
    return error_response(data["id"], INTERNAL_ERROR, f"Internal error: {type(exc).__name__}: {exc}", "internal")
