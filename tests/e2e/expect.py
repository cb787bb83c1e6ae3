"""Small assertions shared by the e2e tests of request semantics."""

from __future__ import annotations

from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import AgentClient


async def refused(client: AgentClient, method: str, params: Any) -> JsonRpcException:
    """The JSON-RPC error a request gets (the test fails if it succeeds)."""
    with pytest.raises(JsonRpcException) as caught:
        await client.call(method, params)
    return caught.value


def reason(error: JsonRpcException) -> str | None:
    return (error.data or {}).get("reason")


async def refused_with(client: AgentClient, method: str, params: Any, expected_reason: str,
                       code: int) -> JsonRpcException:
    error = await refused(client, method, params)
    assert (reason(error), error.code) == (expected_reason, code), error.message
    assert "Traceback" not in error.message and error.message.strip()
    return error

