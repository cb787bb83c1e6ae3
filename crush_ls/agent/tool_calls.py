"""One tool call of a turn, decided and run: the permission rules first (asking the person when they
say so), then the tool; whatever goes wrong becomes a result the model reads (only a cancel escapes).
`result_part` is what is stored and sent of the result, with every key value redacted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..permissions import Permissions, granted
from ..providers.base import ToolCallRequest
from ..settings.secrets import redact, redact_json
from ..storage import Store
from ..tools.base import Files, Tool, ToolContext, ToolResult
from ..tools.paths import ToolInputError
from .coordinator import Run

log = logging.getLogger(__name__)

NOT_RUN = "Not run: an earlier tool call of this step was denied."


class ToolDeps(Protocol):
    """What running a tool needs from the workspace's agent."""

    root: Path
    store: Store
    permissions: Permissions
    files: Files | None  # the editor's buffers for the file tools (ACP fs/*); None: the disk

    def tools_for(self, session_id: str) -> dict[str, Tool]:
        """The workspace's tools and those of the session's own MCP servers."""
        ...


async def call_tool(deps: ToolDeps, run: Run, request: ToolCallRequest, user_message_id: str | None,
                    set_status: Callable[[str], None]) -> ToolResult:
    """Decide and run `request`; `set_status` announces each status the call goes through."""
    tools = deps.tools_for(run.session_id)
    tool = tools.get(request.name)
    ctx = ToolContext(
        root=deps.root, session_id=run.session_id, run_id=run.id,
        tool_call_id=request.id, store=deps.store, files=deps.files, message_id=user_message_id,
    )
    try:
        if request.input_error:
            raise ToolInputError(f"Tool call failed: arguments were not valid JSON: {request.input_error}")
        if tool is None:
            raise ToolInputError(f"Unknown tool {request.name!r}. Available: {', '.join(tools)}")
        args = tool.parse(request.input)
        access = tool.access(ctx, args)
        if deps.permissions.needs_decision(access):
            decision = await deps.permissions.decide(
                session_id=run.session_id, run_id=run.id, tool_call_id=request.id,
                tool=request.name, access=access, input=request.input, emit=run.events.emit,
                on_asking=lambda: set_status("awaiting_permission"),
            )
            if not granted(decision):
                set_status("failed")
                return ToolResult(
                    f"Permission denied ({decision}): the user did not allow {access.description}.",
                    is_error=True, stop_turn=True,
                )
        set_status("running")
        result = await tool.run(ctx, args)
    except ToolInputError as exc:
        result = ToolResult(str(exc), is_error=True)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("tool %s failed", request.name)
        result = ToolResult(f"Tool {request.name} failed: {type(exc).__name__}: {exc}", is_error=True)
    set_status("failed" if result.is_error else "completed")
    return result


def result_part(call: dict[str, Any], result: ToolResult) -> dict[str, Any]:
    """The stored `tool_result` part of `call`."""
    # No key in what the model, the client and the database get (`cat .env`, /proc/$PPID/environ).
    part: dict[str, Any] = {
        "type": "tool_result", "toolCallId": call["id"], "name": call["name"],
        "content": redact(result.content), "isError": result.is_error,
    }
    if result.metadata:
        part["metadata"] = redact_json(result.metadata)
    if result.parts:
        part["parts"] = redact_json(result.parts)
    return part
