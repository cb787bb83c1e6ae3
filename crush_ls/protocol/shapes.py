"""The shape of every result, notification body and message part (PROTOCOL sections 2, 3 and 6).

They are TypedDicts: the server builds and sends plain dicts (a notification
costs 5 µs as a dict and 14 µs as a class), and a type checker holds the
builders to these declarations. Keys are the wire's camelCase. `NotRequired`
marks a key that is left out rather than sent as null.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

FinishReason = Literal["end_turn", "max_tokens", "tool_use", "canceled", "error", "content_filter", "unknown"]
ToolCallStatus = Literal["pending", "awaiting_permission", "running", "completed", "failed", "canceled"]
Decision = Literal["allow", "allow_session", "deny", "timeout", "canceled"]
Role = Literal["user", "assistant", "tool"]


# ---------------------------------------------------------------------- message parts
class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ReasoningPart(TypedDict):
    type: Literal["reasoning"]
    text: str
    signature: NotRequired[str]  # Anthropic's thinking signature, kept to replay the turn


class ToolCallPart(TypedDict):
    type: Literal["tool_call"]
    id: str
    name: str
    input: dict[str, Any]
    status: ToolCallStatus


class ToolResultPart(TypedDict):
    type: Literal["tool_result"]
    toolCallId: str
    name: str
    content: str
    isError: bool
    metadata: NotRequired[dict[str, Any]]  # write/edit/multiedit: diff and path
    parts: NotRequired[list[dict[str, Any]]]  # an MCP result's images and resources


class BinaryPart(TypedDict):
    type: Literal["binary"]
    path: NotRequired[str]
    mimeType: str
    data: str  # base64


class Position(TypedDict):
    line: int
    character: int


class Range(TypedDict):
    start: Position
    end: Position


class ContextPart(TypedDict):
    """An `agent/sendMessage.context` item as stored with the user message, its text as the model read it."""

    type: Literal["context"]
    uri: str
    kind: Literal["file", "selection", "diagnostics"]
    range: NotRequired[Range]
    text: str
    truncated: NotRequired[bool]  # the text was cut to the size limit


class FinishPart(TypedDict):
    type: Literal["finish"]
    reason: FinishReason
    message: NotRequired[str]
    time: str


Part = TextPart | ReasoningPart | ToolCallPart | ToolResultPart | BinaryPart | ContextPart | FinishPart


# ---------------------------------------------------------------------- records
class Session(TypedDict):
    id: str
    title: str
    createdAt: str
    updatedAt: str
    messageCount: int
    promptTokens: int
    completionTokens: int
    cost: float
    busy: bool


class Message(TypedDict):
    id: str
    sessionId: str
    role: Role
    parts: list[Part]
    model: NotRequired[str]
    provider: NotRequired[str]
    createdAt: str
    updatedAt: str


class Model(TypedDict):
    provider: str
    model: str
    name: str
    contextWindow: int
    supportsTools: bool


class Usage(TypedDict):
    inputTokens: int
    outputTokens: int
    cost: float


class Permission(TypedDict):
    id: str
    toolCallId: str
    tool: str
    action: str
    path: NotRequired[str]
    description: str
    input: dict[str, Any]


class QueuedRun(TypedDict):
    runId: str
    prompt: str


# ---------------------------------------------------------------------- results
class SendMessageResult(TypedDict):
    accepted: bool
    runId: str
    sessionId: str
    queued: bool
    position: int


class CancelResult(TypedDict):
    canceled: int


class StatusResult(TypedDict):
    busy: bool
    activeRunId: str | None
    queued: list[QueuedRun]
    pendingPermissions: list[Permission]
    model: Model | None


class QueuedPromptsResult(TypedDict):
    prompts: list[str]
    runIds: list[str]


class ClearQueueResult(TypedDict):
    cleared: int
    prompts: list[str]  # what it dropped, oldest first
    runIds: list[str]


class PopQueueResult(TypedDict):
    prompt: str | None
    runId: str | None
    attachments: list[dict[str, Any]]


HunkStatus = Literal["pending", "accepted", "rejected"]


class Hunk(TypedDict):
    id: str  # a hash of path, position and lines: stable across calls and restarts
    header: str
    oldStart: int
    oldLines: int
    newStart: int
    newLines: int
    lines: list[str]  # " ", "-" or "+" then the line, without its line end
    status: HunkStatus


class FileChange(TypedDict):
    path: str  # relative to the workspace folder, "/"-separated
    uri: str
    status: Literal["added", "modified", "deleted"]
    before: str | None
    after: str | None
    binary: bool
    tooLarge: bool
    diff: str
    additions: int
    removals: int
    runIds: list[str]
    hunks: list[Hunk]


class ChangesResult(TypedDict):
    files: list[FileChange]


class ReviewResult(TypedDict):
    path: str
    accepted: list[str]
    rejected: list[str]


class RestoredFile(TypedDict):
    path: str
    action: Literal["restored", "deleted", "recreated"]


class Conflict(TypedDict):
    path: str
    reason: str


class RewindResult(TypedDict):
    rewindId: str
    restored: list[RestoredFile]
    conflicts: list[Conflict]
    hiddenMessages: int


class UnrewindResult(TypedDict):
    rewindId: str
    restored: list[RestoredFile]
    conflicts: list[Conflict]
    shownMessages: int


class SummarizeResult(TypedDict):
    accepted: bool
    runId: str


class ModelsResult(TypedDict):
    current: Model | None
    available: list[Model]


class SetModelResult(TypedDict):
    current: Model


class McpTool(TypedDict):
    name: str  # as the model sees it: mcp_<server>_<tool>
    description: str


class McpServer(TypedDict):
    name: str
    type: Literal["stdio", "http", "sse"]
    state: Literal["starting", "connected", "failed", "disabled"]
    error: str | None
    restarts: int
    tools: list[McpTool]


class McpServersResult(TypedDict):
    servers: list[McpServer]


class SessionListResult(TypedDict):
    sessions: list[Session]


class MessagesResult(TypedDict):
    messages: list[Message]


class DeleteResult(TypedDict):
    pass


# ---------------------------------------------------------------------- agent/requestPermission
class RequestPermissionParams(TypedDict):
    workspace: str
    sessionId: str
    runId: str
    permission: Permission


class RequestPermissionResult(TypedDict):
    decision: Literal["allow", "allow_session", "deny"]


# ---------------------------------------------------------------------- agent/notification bodies
# The emitter adds `workspace`, `sessionId`, `runId` (runs only) and the transport `seq`.
class RunQueued(TypedDict):
    type: Literal["run_queued"]
    position: int


class RunStarted(TypedDict):
    type: Literal["run_started"]


class MessageCreated(TypedDict):
    type: Literal["message_created"]
    message: Message


class Delta(TypedDict):
    type: Literal["text_delta", "reasoning_delta"]
    messageId: str
    text: str


class ToolCallInfo(TypedDict):
    id: str
    name: str
    input: dict[str, Any]
    status: ToolCallStatus


class ToolCallNote(TypedDict):
    type: Literal["tool_call"]
    messageId: str | None
    toolCall: ToolCallInfo


class ToolResultNote(TypedDict):
    type: Literal["tool_result"]
    messageId: str
    toolCallId: str
    name: str
    content: str
    isError: bool
    metadata: NotRequired[dict[str, Any]]
    parts: NotRequired[list[dict[str, Any]]]


class PermissionRequested(TypedDict):
    type: Literal["permission_requested"]
    permission: Permission


class PermissionResolved(TypedDict):
    type: Literal["permission_resolved"]
    permissionId: str
    toolCallId: str
    decision: Decision


class MessageFinished(TypedDict):
    type: Literal["message_finished"]
    messageId: str
    finishReason: FinishReason
    usage: NotRequired[Usage]


class SessionUpdated(TypedDict):
    type: Literal["session_updated"]
    session: Session


class AgentError(TypedDict):
    type: Literal["agent_error"]
    message: str
    code: str
    retryable: bool
    willRetry: bool


class RunComplete(TypedDict):
    type: Literal["run_complete"]
    messageId: NotRequired[str]
    text: str
    finishReason: FinishReason
    error: NotRequired[str]
    usage: Usage
    foldedInto: NotRequired[str]


class McpUpdated(TypedDict):  # about the workspace: no sessionId, no runId
    type: Literal["mcp_updated"]
    name: str  # the server that changed
    servers: list[McpServer]


class ReviewedHunk(TypedDict):
    id: str
    decision: Literal["accept", "reject"]


class ChangeReviewed(TypedDict):  # after agent/review: no runId
    type: Literal["change_reviewed"]
    path: str
    hunks: list[ReviewedHunk]


Notification = (
    RunQueued | RunStarted | MessageCreated | Delta | ToolCallNote | ToolResultNote | PermissionRequested
    | PermissionResolved | MessageFinished | SessionUpdated | AgentError | RunComplete | McpUpdated
    | ChangeReviewed
)
