"""What the OpenAI and Anthropic providers share: history repair, tool input
parsing, API keys, and turning SDK exceptions into `ProviderError`s.

Nothing here imports a vendor SDK at module level: the SDKs take a long time
to import and are only needed once a workspace calls a model.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import sys
import time
from collections import defaultdict, deque
from typing import Any

import attrs

from ..config import ModelConfig
from ..protocol.errors import AgentNotInitialized
from .base import ProviderError, error_code_for_status

MISSING_RESULT = "Error: the tool call did not complete, so it has no result."

# Hints of a full context window in error bodies of local servers
# (llama.cpp: "exceeds the available context size"; LM Studio: "context overflow").
_CONTEXT_HINTS = ("context_length_exceeded", "exceed_context_size", "context size", "context overflow")

# Anthropic (and some proxies) name the error type in the body; a mid-stream
# `error` event arrives on a 200 response, so the type is all we have.
_STATUS_OF_ERROR_TYPE = {
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "api_error": 500,
    "overloaded_error": 529,
}


# --- history -----------------------------------------------------------------


@attrs.frozen
class UserTurn:
    parts: list[dict[str, Any]]  # wire parts of type text / binary, none empty


@attrs.frozen
class AssistantTurn:
    # wire parts of type reasoning / text / tool_call in stored order,
    # consecutive texts joined, empty ones dropped
    parts: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p["type"] == "text")

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [p for p in self.parts if p["type"] == "tool_call"]


@attrs.frozen
class ToolResults:
    # one wire tool_result part per tool call of the assistant turn before
    results: list[dict[str, Any]]


Turn = UserTurn | AssistantTurn | ToolResults


def conversation(messages: list[dict[str, Any]]) -> list[Turn]:
    """The stored messages as vendors need them.

    Every assistant turn with tool calls is followed by exactly one result
    per call, in call order (vendors reject a history without them): results
    are taken from wherever they were stored, a call without one gets an
    error result, and results of unknown calls are dropped. Empty messages
    (a turn cancelled before any output) are left out.
    """
    results: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
    for message in messages:
        for part in message.get("parts") or []:
            if part.get("type") == "tool_result":
                results[str(part.get("toolCallId"))].append(part)

    turns: list[Turn] = []
    for message in messages:
        role = message.get("role")
        parts = message.get("parts") or []
        if role == "user":
            content = [p for p in parts if _is_user_content(p)]
            if content:
                turns.append(UserTurn(content))
        elif role == "assistant":
            turn = _assistant_turn(parts)
            if turn is None:
                continue
            turns.append(turn)
            if turn.tool_calls:
                turns.append(ToolResults([_result_for(call, results) for call in turn.tool_calls]))
    return turns


def _is_user_content(part: dict[str, Any]) -> bool:
    if part.get("type") == "text":
        return bool(part.get("text"))
    return part.get("type") == "binary" and bool(part.get("data"))


def _assistant_turn(parts: list[dict[str, Any]]) -> AssistantTurn | None:
    kept: list[dict[str, Any]] = []
    for part in parts:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            if kept and kept[-1]["type"] == "text":
                kept[-1] = {"type": "text", "text": kept[-1]["text"] + part["text"]}
            else:
                kept.append({"type": "text", "text": part["text"]})
        elif kind == "reasoning" and (part.get("text") or part.get("signature")):
            kept.append(part)
        elif kind == "tool_call" and part.get("id") and part.get("name"):
            kept.append(part)
    if not any(p["type"] != "reasoning" for p in kept):
        return None  # reasoning alone is not a reply a vendor accepts back
    return AssistantTurn(kept)


def _result_for(call: dict[str, Any], results: dict[str, deque[dict[str, Any]]]) -> dict[str, Any]:
    pending = results.get(str(call["id"]))
    if pending:
        return pending.popleft()
    return {"type": "tool_result", "toolCallId": call["id"], "name": call["name"],
            "content": MISSING_RESULT, "isError": True}


def result_text(result: dict[str, Any]) -> str:
    content = result.get("content")
    if isinstance(content, str):
        return content
    return json.dumps(content)


def binary_note(part: dict[str, Any]) -> str:
    """What a model reads in place of an attachment its API cannot take."""
    name = part.get("path") or "attachment"
    return f"[{name} ({part.get('mimeType') or 'unknown type'}) is attached but cannot be shown to this model]"


# --- tool input ----------------------------------------------------------------


def parse_tool_input(raw: str) -> tuple[dict[str, Any], str | None]:
    """Streamed tool arguments as an input object, or ({}, why not)."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return {}, f"the tool input is not valid JSON ({exc.msg}): {raw[:200]}"
    if not isinstance(value, dict):
        return {}, f"the tool input must be a JSON object, got: {raw[:200]}"
    return value, None


# --- API keys --------------------------------------------------------------------


def api_key_for(config: ModelConfig, vendor: str, env_name: str, official: bool) -> str | None:
    """The key to send, or None when the endpoint needs none.

    A configured `$NAME` that is unset, or no key at all for the vendor's own
    endpoint, is a configuration error: say which variable to set.
    """
    if config.api_key:
        key = config.resolved_api_key()
        if not key:
            raise AgentNotInitialized(
                f"{vendor} model: the API key variable {config.api_key.strip()!r} is not set in the environment."
            )
        return key
    key = os.environ.get(env_name)
    if key or not official:
        return key or None
    raise AgentNotInitialized(
        f"{vendor} model: no API key. Set {env_name}, or give model.apiKey "
        f'(e.g. "${env_name}") in initializationOptions or api_key in crush.json.'
    )


def redact(text: str, secrets: list[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _without_userinfo(url: str | None) -> str:
    return re.sub(r"//[^/@]*@", "//", url or "")


def quiet_sdk_loggers() -> None:
    """Keep the SDKs' and HTTP clients' debug logs (request dumps) out of our log.

    At DEBUG they log request options and connection details; nothing there
    is worth the risk of a credential in a log line.
    """
    for name in ("openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


# --- errors ------------------------------------------------------------------------


def provider_error(exc: BaseException, vendor: str, base_url: str | None,
                   secrets: list[str | None]) -> ProviderError | None:
    """Classify an exception of a model call; None when it is not an API or transport error.

    `vendor` is the SDK's module (`openai` or `anthropic`), which is already
    imported when a call failed.
    """
    sdk = __import__(vendor)
    label = "OpenAI" if vendor == "openai" else "Anthropic"
    if isinstance(exc, (sdk.APITimeoutError, sdk.APIConnectionError)) or _is_transport_error(exc):
        detail = str(exc) or type(exc).__name__
        cause = exc.__cause__ or exc.__context__
        if cause is not None and str(cause) and str(cause) not in detail:
            detail = f"{detail} {cause}"  # the SDK says "Connection error."; httpx says which
        message = f"{label} API at {_without_userinfo(base_url) or 'its default address'}: connection failed ({detail})"
        return ProviderError(redact(message, secrets), code="connection")
    if isinstance(exc, sdk.APIStatusError):
        return _status_error(exc, label, secrets, exc.status_code, exc.response.headers)
    if isinstance(exc, sdk.APIError):  # an error event in the middle of a stream
        return _status_error(exc, label, secrets, None, {})
    return None


def _is_transport_error(exc: BaseException) -> bool:
    for module_name in ("httpx2", "httpx"):
        module = sys.modules.get(module_name)  # whichever the SDKs use is already imported
        if module is not None and isinstance(exc, module.TransportError):
            return True
    return False


def _status_error(exc: Any, label: str, secrets: list[str | None], status: int | None,
                  headers: Any) -> ProviderError:
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    error_type = error.get("type") or error.get("code")
    detail = str(error.get("message") or getattr(exc, "message", "") or exc)
    if status is None or status < 400:  # mid-stream error: only its type tells what it was
        status = _STATUS_OF_ERROR_TYPE.get(str(error_type), 500)
    hints = f"{detail} {error.get('type') or ''} {error.get('code') or ''} {body if isinstance(body, str) else ''}"
    code = error_code_for_status(status, hints)
    if 400 <= status < 500 and any(h in hints.lower() for h in _CONTEXT_HINTS):
        code = "context_window_exceeded"
    message = redact(f"{label} API error {status}: {detail}", secrets)
    return ProviderError(message, code=code, status=status, retry_after=retry_after_seconds(headers))


def retry_after_seconds(headers: Any) -> float | None:
    """`retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
    except (AttributeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
