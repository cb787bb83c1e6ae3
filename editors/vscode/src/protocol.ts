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
  | { type: 'finish'; reason: string; message?: string; time: string };

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
}

/** The client capability that tells the server we answer `agent/requestPermission`. */
export const CLIENT_EXPERIMENTAL_CAPABILITIES = { crush: { permissions: true } } as const;

export const NOTIFICATION_METHOD = 'agent/notification';
export const PERMISSION_METHOD = 'agent/requestPermission';

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

/**
 * Typed requests to one workspace of a crush-ls server, plus one fan-out point
 * for its notifications (so several listeners share a single subscription:
 * JSON-RPC connections keep one handler per method, so make one CrushApi per connection).
 */
export class CrushApi {
  private readonly listeners = new Set<(n: Notification) => void>();
  private permissionHandler: PermissionHandler | undefined;
  private readonly subscriptions: Disposable[];

  constructor(private readonly rpc: Rpc, readonly workspace?: string) {
    this.subscriptions = [
      rpc.onNotification(NOTIFICATION_METHOD, (n: Notification) => this.dispatch(n)),
      rpc.onRequest(PERMISSION_METHOD, (p: PermissionRequest, token) => this.answerPermission(p, token)),
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

  clearQueue(sessionId: string): Promise<{ cleared: number }> {
    return this.request('agent/clearQueue', { sessionId });
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

export function buildInitializationOptions(model: unknown, permissionMode: unknown): InitializationOptions {
  const options: InitializationOptions = {};
  const parsed = parseModelSetting(model);
  if (parsed) {
    options.model = parsed;
  }
  if (permissionMode === 'ask' || permissionMode === 'allow' || permissionMode === 'deny') {
    options.permissions = { mode: permissionMode };
  }
  return options;
}
