// The crush-ls wire protocol (PROTOCOL.md, version 1) as typed calls.
// Nothing here imports `vscode`: the same code runs in the extension host
// (over vscode-languageclient) and in node tests (over vscode-jsonrpc).

export type FinishReason = 'end_turn' | 'max_tokens' | 'canceled' | 'error' | 'content_filter' | 'unknown' | 'tool_use';
export type ToolStatus = 'pending' | 'awaiting_permission' | 'running' | 'completed' | 'failed' | 'canceled';
export type Decision = 'allow' | 'allow_session' | 'deny';
export type PermissionMode = 'ask' | 'allow' | 'deny';

export interface Session {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  busy: boolean;
}

export type Part =
  | { type: 'text'; text: string }
  | { type: 'reasoning'; text: string }
  | { type: 'tool_call'; id: string; name: string; input: unknown; status: ToolStatus }
  | { type: 'tool_result'; toolCallId: string; name: string; content: string; isError: boolean; metadata?: ToolMetadata }
  | { type: 'binary'; path?: string; mimeType: string; data: string }
  | { type: 'context'; uri: string; range?: Range; kind: ContextKind; text?: string }
  | { type: 'finish'; reason: string; message?: string; time: string };

/** LSP positions: zero-based line and UTF-16 character. */
export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type ContextKind = 'file' | 'selection' | 'diagnostics';

/** What the editor shows the person, sent with a prompt (`agent/sendMessage.context`). */
export interface ContextItem {
  uri: string;
  range?: Range;
  text?: string;
  kind: ContextKind;
}

/** An LSP Diagnostic, as `agent/diagnostics` answers it. */
export interface Diagnostic {
  range: Range;
  severity?: 1 | 2 | 3 | 4;
  code?: number | string;
  source?: string;
  /** LSP 3.18 allows markup here. */
  message: string | { kind: string; value: string };
  [key: string]: unknown;
}

export interface DiagnosticsParams {
  uris?: string[];
}

export interface DiagnosticsResult {
  items: Array<{ uri: string; diagnostics: Diagnostic[] }>;
}

export type ChangeStatus = 'added' | 'modified' | 'deleted';

export type HunkStatus = 'pending' | 'accepted' | 'rejected';

/** One hunk of a changed file; its id is the same in every `agent/changes` answer. */
export interface Hunk {
  id: string;
  header: string;
  /** 1-based first line and line count in the before text, and in the agent's after text. */
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** The hunk's lines without line ends, each starting with " ", "-" or "+". */
  lines: string[];
  status: HunkStatus;
}

/** One file of `agent/changes` (docs/protocol.md). */
export interface FileChange {
  /** Relative to the workspace folder, `/`-separated. */
  path: string;
  uri: string;
  status: ChangeStatus;
  /** Null: did not exist (or deleted), or binary / too large. */
  before: string | null;
  after: string | null;
  binary: boolean;
  tooLarge: boolean;
  diff: string;
  additions: number;
  removals: number;
  runIds: string[];
  hunks: Hunk[];
}

export interface ChangesParams {
  sessionId: string;
  runId?: string;
  sinceMessageId?: string;
}

export interface ChangesResult {
  files: FileChange[];
}

export type ReviewDecision = 'accept' | 'reject';

export interface ReviewParams {
  sessionId: string;
  path: string;
  hunks: Array<{ id: string; decision: ReviewDecision }>;
}

export interface ReviewResult {
  path: string;
  accepted: string[];
  rejected: string[];
}

export interface RewindResult {
  rewindId: string;
  /** `restored` (old text back), `deleted` (the agent had created it), `recreated` (it had deleted it). */
  restored: Array<{ path: string; action: 'restored' | 'deleted' | 'recreated' }>;
  /** Files changed by hand since the agent's last change, left as they are (unless `force`). */
  conflicts: Array<{ path: string; reason: string }>;
  hiddenMessages?: number;
  shownMessages?: number;
}

/** Lines added and removed by a unified diff (headers not counted). */
export function diffCounts(diff: string): { additions: number; deletions: number } {
  let additions = 0;
  let deletions = 0;
  for (const line of diff.split('\n')) {
    if (line.startsWith('+') && !line.startsWith('+++')) {
      additions++;
    } else if (line.startsWith('-') && !line.startsWith('---')) {
      deletions++;
    }
  }
  return { additions, deletions };
}

export interface ToolMetadata {
  diff?: string;
  path?: string;
  [key: string]: unknown;
}

export interface Message {
  id: string;
  sessionId: string;
  role: 'user' | 'assistant' | 'tool';
  parts: Part[];
  model?: string;
  provider?: string;
  createdAt: string;
  updatedAt: string;
}

export interface Permission {
  id: string;
  toolCallId: string;
  tool: string;
  action: string;
  path?: string;
  description: string;
  input: unknown;
}

export interface Model {
  provider: string;
  model: string;
  name: string;
  contextWindow: number;
  supportsTools: boolean;
}

export interface ModelConfig {
  provider: string;
  model?: string;
  [key: string]: unknown;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cost: number;
}

export interface ToolCall {
  id: string;
  name: string;
  input: unknown;
  status: ToolStatus;
}

interface Base {
  seq: number;
  workspace: string;
  sessionId: string;
  runId?: string;
}

/** One `agent/notification`, discriminated by `type` (PROTOCOL.md section 3). */
export type Notification = Base & (
  | { type: 'run_queued'; position: number }
  | { type: 'run_started' }
  | { type: 'message_created'; message: Message }
  | { type: 'text_delta'; messageId: string; text: string }
  | { type: 'reasoning_delta'; messageId: string; text: string }
  | { type: 'tool_call'; messageId: string; toolCall: ToolCall }
  | { type: 'tool_result'; messageId: string; toolCallId: string; name: string; content: string; isError: boolean; metadata?: ToolMetadata }
  | { type: 'permission_requested'; permission: Permission }
  | { type: 'permission_resolved'; permissionId: string; toolCallId: string; decision: string }
  | { type: 'message_finished'; messageId: string; finishReason: FinishReason; usage?: Usage }
  | { type: 'session_updated'; session: Session }
  | { type: 'agent_error'; message: string; code: string; retryable: boolean; willRetry: boolean }
  | RunComplete
  // About the workspace: it has no sessionId (nor runId).
  | { type: 'mcp_updated'; name: string; servers: McpServer[] }
  | { type: 'change_reviewed'; path: string; hunks: Array<{ id: string; decision: ReviewDecision }>; [key: string]: unknown }
);

/** One MCP server of the workspace (`agent/mcpServers`, `mcp_updated`; docs/mcp.md). */
export interface McpServer {
  name: string;
  type: 'stdio' | 'http' | 'sse';
  state: 'starting' | 'connected' | 'failed' | 'disabled';
  error: string | null;
  restarts: number;
  tools: Array<{ name: string; description: string }>;
}

/** "MCP 2/3" (connected of enabled), with ", 1 failed"; undefined when no server is enabled. */
export function mcpSummary(servers: McpServer[]): string | undefined {
  const enabled = servers.filter((s) => s.state !== 'disabled');
  if (enabled.length === 0) {
    return undefined;
  }
  const connected = enabled.filter((s) => s.state === 'connected').length;
  const failed = enabled.filter((s) => s.state === 'failed').length;
  return `MCP ${connected}/${enabled.length}` + (failed ? `, ${failed} failed` : '');
}

/** "time (stdio): connected, 2 tools", "docs (http): failed: <why>". */
export function mcpLine(server: McpServer): string {
  let line = `${server.name} (${server.type}): ${server.state}`;
  if (server.state === 'connected') {
    line += `, ${server.tools.length} tools`;
  }
  return server.error ? `${line}: ${server.error}` : line;
}

export interface RunComplete {
  type: 'run_complete';
  messageId?: string;
  text: string;
  finishReason: FinishReason;
  error?: string;
  usage: Usage;
  foldedInto?: string;
}

export type RunCompleteNotification = Base & RunComplete;

export interface SendMessageParams {
  sessionId: string;
  prompt: string;
  runId?: string;
  attachments?: Array<{ path?: string; uri?: string; mimeType?: string; text?: string; content?: string }>;
  context?: ContextItem[];
  mode?: 'queue' | 'steer';
}

export interface SendMessageResult {
  accepted: true;
  runId: string;
  sessionId: string;
  queued: boolean;
  position: number;
}

export interface StatusResult {
  busy: boolean;
  activeRunId: string | null;
  queued: Array<{ runId: string; prompt: string }>;
  pendingPermissions: Permission[];
  lastSeq: number;
  model: Model | null;
}

export interface PermissionRequest {
  workspace: string;
  sessionId: string;
  runId: string;
  permission: Permission;
}

/** What crush-ls puts in `initializationOptions` (every field optional). */
export interface InitializationOptions {
  model?: ModelConfig;
  smallModel?: ModelConfig;
  permissions?: { mode?: PermissionMode; allowedTools?: string[]; timeoutMs?: number };
  dataDirectory?: string;
  streamIntervalMs?: number;
  /** Show each file the agent edits (`window/showDocument`, without taking focus). */
  followAgent?: boolean;
}

/**
 * The client capabilities that tell the server we answer `agent/requestPermission`,
 * `agent/saveDocument` and `agent/diagnostics`.
 */
export const CLIENT_EXPERIMENTAL_CAPABILITIES = { crush: { permissions: true, saveDocument: true, diagnostics: true } } as const;

export const NOTIFICATION_METHOD = 'agent/notification';
export const PERMISSION_METHOD = 'agent/requestPermission';
export const SAVE_DOCUMENT_METHOD = 'agent/saveDocument';
export const DIAGNOSTICS_METHOD = 'agent/diagnostics';

/** The editor's side of the server-to-client requests about documents. */
export interface EditorHandlers {
  /** Saves the open document (`agent/saveDocument`); false when it is not open or the save failed. */
  saveDocument(uri: string): Promise<boolean>;
  /** The editor's diagnostics of these documents, or of every file it knows (`agent/diagnostics`). */
  diagnostics(uris: string[] | undefined): Promise<DiagnosticsResult['items']>;
}

// ---------------------------------------------------------------------------
// Transport: the small surface both LanguageClient and MessageConnection offer.

export interface Disposable {
  dispose(): void;
}

export interface CancellationToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): Disposable;
}

export interface Rpc {
  sendRequest<R>(method: string, params: unknown): Promise<R>;
  onNotification(method: string, handler: (params: any) => void): Disposable;
  onRequest(method: string, handler: (params: any, token: CancellationToken) => unknown): Disposable;
}

/** A JSON-RPC error from crush-ls, with its stable `data.reason`. */
export class CrushError extends Error {
  constructor(message: string, readonly code: number | undefined, readonly reason: string | undefined) {
    super(message);
    this.name = 'CrushError';
  }

  static from(error: unknown): CrushError {
    if (error instanceof CrushError) {
      return error;
    }
    const e = error as { message?: unknown; code?: unknown; data?: { reason?: unknown } } | undefined;
    const message = typeof e?.message === 'string' ? e.message : String(error);
    const code = typeof e?.code === 'number' ? e.code : undefined;
    const reason = typeof e?.data?.reason === 'string' ? e.data.reason : undefined;
    return new CrushError(message, code, reason);
  }
}

export type PermissionHandler = (request: PermissionRequest, token: CancellationToken) => Promise<Decision>;

export interface QueueResult {
  cleared: number;
  prompts: string[];
  runIds: string[];
}

export interface PopQueueResult {
  /** The prompt taken back, or null when nothing was queued. */
  prompt: string | null;
  runId: string | null;
  attachments: NonNullable<SendMessageParams['attachments']>;
}

/**
 * Typed requests to one workspace of a crush-ls server, plus one fan-out point
 * for its notifications (so several listeners share a single subscription:
 * JSON-RPC connections keep one handler per method, so make one CrushApi per connection).
 */
export class CrushApi {
  private readonly listeners = new Set<(n: Notification) => void>();
  private permissionHandler: PermissionHandler | undefined;
  private editorHandlers: EditorHandlers | undefined;
  private readonly subscriptions: Disposable[];

  constructor(private readonly rpc: Rpc, readonly workspace?: string) {
    this.subscriptions = [
      rpc.onNotification(NOTIFICATION_METHOD, (n: Notification) => this.dispatch(n)),
      rpc.onRequest(PERMISSION_METHOD, (p: PermissionRequest, token) => this.answerPermission(p, token)),
      rpc.onRequest(SAVE_DOCUMENT_METHOD, (p: { uri?: unknown }) => this.answerSave(p)),
      rpc.onRequest(DIAGNOSTICS_METHOD, (p: DiagnosticsParams | undefined) => this.answerDiagnostics(p)),
    ];
  }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.listeners.clear();
  }

  onNotification(listener: (n: Notification) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  setPermissionHandler(handler: PermissionHandler | undefined): void {
    this.permissionHandler = handler;
  }

  setEditorHandlers(handlers: EditorHandlers | undefined): void {
    this.editorHandlers = handlers;
  }

  sendMessage(params: SendMessageParams): Promise<SendMessageResult> {
    return this.request('agent/sendMessage', params);
  }

  cancel(sessionId: string, runId?: string): Promise<{ canceled: number }> {
    return this.request('agent/cancel', { sessionId, ...(runId ? { runId } : {}) });
  }

  status(sessionId?: string): Promise<StatusResult> {
    return this.request('agent/status', sessionId ? { sessionId } : {});
  }

  queuedPrompts(sessionId: string): Promise<{ prompts: string[]; runIds: string[] }> {
    return this.request('agent/queuedPrompts', { sessionId });
  }

  clearQueue(sessionId: string): Promise<QueueResult> {
    return this.request('agent/clearQueue', { sessionId });
  }

  /** Takes the last queued prompt back (it will not run). */
  popQueue(sessionId: string): Promise<PopQueueResult> {
    return this.request('agent/popQueue', { sessionId });
  }

  /** The files changed by a run, since a user message, or by the whole session. */
  changes(params: ChangesParams): Promise<FileChange[]> {
    return this.request<ChangesResult>('agent/changes', params).then((r) => r.files);
  }

  review(params: ReviewParams): Promise<ReviewResult> {
    return this.request('agent/review', params);
  }

  /** Back to just before the user message `messageId`: its files restored, the messages from it on hidden. */
  rewind(sessionId: string, messageId: string, force = false): Promise<RewindResult> {
    return this.request('agent/rewind', { sessionId, messageId, ...(force ? { force } : {}) });
  }

  unrewind(sessionId: string, force = false): Promise<RewindResult> {
    return this.request('agent/unrewind', { sessionId, ...(force ? { force } : {}) });
  }

  models(): Promise<{ current: Model; available: Model[] }> {
    return this.request('agent/models', {});
  }

  setModel(model: ModelConfig): Promise<{ current: Model }> {
    return this.request('agent/setModel', { model });
  }

  mcpServers(): Promise<McpServer[]> {
    return this.request<{ servers: McpServer[] }>('agent/mcpServers', {}).then((r) => r.servers);
  }

  createSession(title?: string): Promise<Session> {
    return this.request('session/create', title ? { title } : {});
  }

  listSessions(): Promise<Session[]> {
    return this.request<{ sessions: Session[] }>('session/list', {}).then((r) => r.sessions);
  }

  getSession(sessionId: string): Promise<Session> {
    return this.request('session/get', { sessionId });
  }

  messages(sessionId: string): Promise<Message[]> {
    return this.request<{ messages: Message[] }>('session/messages', { sessionId }).then((r) => r.messages);
  }

  renameSession(sessionId: string, title: string): Promise<Session> {
    return this.request('session/rename', { sessionId, title });
  }

  deleteSession(sessionId: string): Promise<void> {
    return this.request<unknown>('session/delete', { sessionId }).then(() => undefined);
  }

  /**
   * Resolves with the run's `run_complete`. Register before sending (with a
   * client-made runId) so that no notification of the run can be missed.
   */
  waitForRun(runId: string, onEvent?: (n: Notification) => void): { done: Promise<RunCompleteNotification>; dispose(): void } {
    let subscription: Disposable | undefined;
    const done = new Promise<RunCompleteNotification>((resolve) => {
      subscription = this.onNotification((n) => {
        if (n.runId !== runId) {
          return;
        }
        onEvent?.(n);
        if (n.type === 'run_complete') {
          subscription?.dispose();
          resolve(n);
        }
      });
    });
    return { done, dispose: () => subscription?.dispose() };
  }

  private async request<R>(method: string, params: object): Promise<R> {
    const withWorkspace = this.workspace ? { workspace: this.workspace, ...params } : params;
    try {
      return await this.rpc.sendRequest<R>(method, withWorkspace);
    } catch (error) {
      throw CrushError.from(error);
    }
  }

  private dispatch(notification: Notification): void {
    if (this.workspace && notification.workspace && notification.workspace !== this.workspace) {
      return;
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(notification);
      } catch (error) {
        // One broken listener must not starve the others of the stream.
        console.error('crush: notification listener failed', error);
      }
    }
  }

  private async answerSave(params: { uri?: unknown }): Promise<{ saved: boolean }> {
    if (!this.editorHandlers || typeof params?.uri !== 'string') {
      return { saved: false };
    }
    try {
      return { saved: await this.editorHandlers.saveDocument(params.uri) };
    } catch (error) {
      console.error('crush: saving a document failed', error);
      return { saved: false };
    }
  }

  private async answerDiagnostics(params: DiagnosticsParams | undefined): Promise<DiagnosticsResult> {
    const uris = Array.isArray(params?.uris) ? params.uris.filter((u): u is string => typeof u === 'string') : undefined;
    if (!this.editorHandlers) {
      return { items: [] };
    }
    return { items: await this.editorHandlers.diagnostics(uris) };
  }

  private async answerPermission(request: PermissionRequest, token: CancellationToken): Promise<{ decision: Decision }> {
    if (!this.permissionHandler) {
      return { decision: 'deny' };
    }
    try {
      return { decision: await this.permissionHandler(request, token) };
    } catch (error) {
      console.error('crush: permission handler failed', error);
      return { decision: 'deny' };
    }
  }
}

export function newRunId(): string {
  return `vscode-${globalThis.crypto.randomUUID()}`;
}

/** `"openai/gpt-4o"` or a model object, as the `crush.model` setting allows. */
export function parseModelSetting(value: unknown): ModelConfig | undefined {
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (!trimmed) {
      return undefined;
    }
    const slash = trimmed.indexOf('/');
    return slash < 0 ? { provider: trimmed } : { provider: trimmed.slice(0, slash), model: trimmed.slice(slash + 1) };
  }
  if (value && typeof value === 'object' && typeof (value as ModelConfig).provider === 'string') {
    return value as ModelConfig;
  }
  return undefined;
}

export function buildInitializationOptions(model: unknown, permissionMode: unknown, followAgent?: unknown): InitializationOptions {
  const options: InitializationOptions = {};
  if (followAgent === true) {
    options.followAgent = true;
  }
  const parsed = parseModelSetting(model);
  if (parsed) {
    options.model = parsed;
  }
  if (permissionMode === 'ask' || permissionMode === 'allow' || permissionMode === 'deny') {
    options.permissions = { mode: permissionMode };
  }
  return options;
}
