"""What the SDK providers (OpenAI, Anthropic) share: the client's lifetime and
timeouts, API keys and their redaction, and SDK exceptions as `ProviderError`s.

A subclass names its SDK (`vendor`, `client_class`) and translates requests
and streams; `SdkProvider` makes the client on the first call (the SDKs take
a long time to import, and a workspace may never call its model), never lets
the SDK retry (the turn loop does, so that each retry is announced) and turns
whatever the SDK raises into a `ProviderError` with no key in it.
"""

from __future__ import annotations

import email.utils
import importlib
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ..protocol.errors import AgentNotInitialized
from ..settings import ModelConfig
from ..settings.secrets import lookup
from .base import ModelCall, ModelInfo, ProviderError, StreamEvent, error_code_for_status

READ_TIMEOUT_S = 600.0  # a local model on a CPU can think for a long time before its first token
CONNECT_TIMEOUT_S = 20.0

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



class SdkProvider:
    """A model reached through a vendor's official async SDK."""

    vendor: ClassVar[str]  # the SDK's module: "openai" / "anthropic"
    label: ClassVar[str]  # the vendor as messages name it
    client_class: ClassVar[str]  # the SDK's async client
    max_retries = 3

    def __init__(self, info: ModelInfo, base_url: str | None, api_key: str | None) -> None:
        self.info = info
        self.base_url = base_url
        self._api_key = api_key
        self._client: Any = None

    def __repr__(self) -> str:  # no key
        return f"{type(self).__name__}(model={self.info.model!r}, base_url={self.base_url!r})"

    def _sdk(self) -> Any:
        if self._client is None:
            sdk = importlib.import_module(self.vendor)  # slow to import: only when the first call is made
            quiet_sdk_loggers()  # after the import: OPENAI_LOG / ANTHROPIC_LOG set levels at import
            self._client = getattr(sdk, self.client_class)(
                base_url=self.base_url,
                # Local servers need no key, but the SDKs insist on one.
                api_key=self._api_key or "not-needed",
                max_retries=0,
                timeout=sdk.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            )
        return self._client

    def request(self, call: ModelCall) -> dict[str, Any]:
        """The SDK's keyword arguments for one streamed call."""
        raise NotImplementedError

    def _stream(self, body: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        """The call's events, translated from the SDK's stream."""
        raise NotImplementedError

    async def stream(self, call: ModelCall) -> AsyncIterator[StreamEvent]:
        try:
            async for event in self._stream(self.request(call)):
                yield event
        except ProviderError:
            raise
        except Exception as exc:
            error = provider_error(exc, self.vendor, self.label, self.base_url, [self._api_key])
            if error is None:
                raise
            raise error from None  # the SDK's exception holds the request; keep it out of logs

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def known_model(table: dict[str, Any], model: str) -> Any:
    """The entry of the longest known id that `model` starts with (ids carry dates: gpt-4o-2024-08-06)."""
    matches = [known for known in table if model == known or model.startswith(known + "-")]
    return table[max(matches, key=len)] if matches else None


def given(value: float | None, default: float) -> float:
    """A configured price, else the known one (0 is a configured price)."""
    return default if value is None else value


# --- tool input ----------------------------------------------------------------


def parse_tool_input(raw: str) -> tuple[dict[str, Any], str | None]:
    """Streamed tool arguments as an input object, or ({}, why not)."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
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
    key = lookup(env_name)
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


def provider_error(exc: BaseException, vendor: str, label: str, base_url: str | None,
                   secrets: list[str | None]) -> ProviderError | None:
    """Classify an exception of a model call; None when it is not an API or transport error.

    `vendor` is the SDK's module (`openai` or `anthropic`), which is already
    imported when a call failed.
    """
    sdk = importlib.import_module(vendor)  # imported already: the call that failed used it
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
