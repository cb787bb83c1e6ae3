// The chat state of one crush-ls session, built from `session/messages` and
// kept current by `agent/notification`s. No `vscode` import: the webview view
// renders snapshots of it, and node tests drive it against a real server.

import {
  CancellationToken,
  ChangeStatus,
  ContextItem,
  ContextKind,
  CrushApi,
  CrushError,
  Disposable,
  FileChange,
  Message,
  Notification,
  RunCompleteNotification,
  SendMessageParams,
  SendMessageResult,
  Session,
  ToolCall,
  ToolMetadata,
  RewindResult,
  newRunId,
} from './protocol';

export interface ToolCard {
  id: string;
  name: string;
  input: unknown;
  status: string;
  content?: string;
  isError?: boolean;
  diff?: string;
  path?: string;
  /** The last permission decision for this call (`allow`, `deny`, `timeout`, ...). */
  decision?: string;
}

export type EntryRole = 'user' | 'assistant' | 'error';

/** A context item as the transcript shows it: a chip with a short label. */
export interface ContextChip {
  uri: string;
  kind: ContextKind;
  label: string;
}

export interface ChatEntry {
  id: string;
  role: EntryRole;
  text: string;
  reasoning: string;
  tools: ToolCard[];
  /** What went with a user prompt from the editor (its file, selection, diagnostics). */
  context: ContextChip[];
  streaming: boolean;
  finishReason?: string;
  /** Bumped on every change, so a renderer can skip entries it already shows. */
  version: number;
}

export interface QueuedPrompt {
  runId: string;
  prompt: string;
}

/** One line of the changed-files list. */
export interface ChangeSummary {
  path: string;
  status: ChangeStatus;
  additions: number;
  removals: number;
  hunks: number;
  accepted: number;
  rejected: number;
}

export interface ChatStatus {
  sessionId?: string;
  title?: string;
  busy: boolean;
  queued: QueuedPrompt[];
  /** The files changed by the last turn that changed files (until another session is opened). */
  changes?: { runId: string; files: ChangeSummary[] };
  /** A rewind that `unrewind` can still undo. */
  canUnrewind?: boolean;
}

export interface ChatChange {
  /** True when the whole list was replaced (another session was opened). */
  reset: boolean;
  entries: ChatEntry[];
  status: ChatStatus;
}

type RunState = 'sending' | 'queued' | 'active';

/** The chat of the session the user is looking at. */
export class ChatSession {
  private session: Session | undefined;
  private entries: ChatEntry[] = [];
  private readonly entryById = new Map<string, ChatEntry>();
  private readonly cardOwner = new Map<string, ChatEntry>();
  private readonly runs = new Map<string, { state: RunState; prompt: string }>();
  private readonly finishedRuns = new Set<string>();
  private readonly runsWithFatalError = new Set<string>();
  /** Runs that called tools: after them, the files they changed are listed. */
  private readonly runsWithTools = new Set<string>();
  private changes: { runId: string; files: FileChange[] } | undefined;
  private canUnrewind = false;
  private readonly changeListeners = new Set<(c: ChatChange) => void>();
  private readonly errorListeners = new Set<(message: string) => void>();
  private readonly subscription: Disposable;

  constructor(private readonly api: CrushApi) {
    this.subscription = api.onNotification((n) => this.apply(n));
  }

  dispose(): void {
    this.subscription.dispose();
    this.changeListeners.clear();
    this.errorListeners.clear();
  }

  get sessionId(): string | undefined {
    return this.session?.id;
  }

  onDidChange(listener: (c: ChatChange) => void): Disposable {
    this.changeListeners.add(listener);
    return { dispose: () => this.changeListeners.delete(listener) };
  }

  /** Errors a person must see: failed requests and run errors. */
  onError(listener: (message: string) => void): Disposable {
    this.errorListeners.add(listener);
    return { dispose: () => this.errorListeners.delete(listener) };
  }

  snapshot(): ChatChange {
    return { reset: true, entries: [...this.entries], status: this.status() };
  }

  status(): ChatStatus {
    const queued = [...this.runs].filter(([, r]) => r.state === 'queued').map(([runId, r]) => ({ runId, prompt: r.prompt }));
    const changes = this.changes && { runId: this.changes.runId, files: this.changes.files.map(summarize) };
    return { sessionId: this.session?.id, title: this.session?.title, busy: this.runs.size > 0, queued, changes, canUnrewind: this.canUnrewind };
  }

  /** The full change of one listed file (before and after text, hunks). */
  changeOf(path: string): FileChange | undefined {
    return this.changes?.files.find((f) => f.path === path);
  }

  async ensureSession(): Promise<string> {
    return this.session?.id ?? (await this.newSession()).id;
  }

  async newSession(title?: string): Promise<Session> {
    const session = await this.api.createSession(title);
    this.show(session, []);
    return session;
  }

  async open(sessionId: string): Promise<void> {
    const [session, messages, status] = await Promise.all([
      this.api.getSession(sessionId),
      this.api.messages(sessionId),
      this.api.status(sessionId),
    ]);
    this.show(session, messages);
    // A session opened mid-run: show it busy until its runs complete.
    if (status.activeRunId) {
      this.setRunState(status.activeRunId, 'active');
    }
    status.queued.forEach((q) => this.runs.set(q.runId, { state: 'queued', prompt: q.prompt }));
    this.emit([]);
  }

  listSessions(): Promise<Session[]> {
    return this.api.listSessions();
  }

  /** Sends a prompt (queued behind running ones by the server); resolves once accepted. */
  async send(prompt: string, mode: 'queue' | 'steer' = 'queue', context: ContextItem[] = []): Promise<SendMessageResult> {
    const sessionId = await this.ensureSession();
    const runId = newRunId();
    // Registered before the request: the run's first notifications may be
    // handled before the response's promise continuation runs.
    this.runs.set(runId, { state: 'sending', prompt });
    this.canUnrewind = false; // a new prompt ends what unrewind could undo
    this.emit([]);
    try {
      const result = await this.api.sendMessage({ sessionId, prompt, runId, mode, ...(context.length ? { context } : {}) });
      const run = this.runs.get(runId);
      if (run && run.state === 'sending') {
        run.state = result.queued ? 'queued' : 'active';
        this.emit([]);
      }
      return result;
    } catch (error) {
      this.runs.delete(runId);
      this.emit([]);
      throw CrushError.from(error);
    }
  }

  /** Takes the last queued prompt back (it will not run); undefined when nothing was queued. */
  async takeBack(): Promise<string | undefined> {
    if (!this.session) {
      return undefined;
    }
    const taken = await this.api.popQueue(this.session.id);
    if (taken.runId) {
      this.runs.delete(taken.runId);
      this.emit([]);
    }
    return taken.prompt ?? undefined;
  }

  /** Lists the files a run changed (the changed-files list); an empty list hides it. */
  async refreshChanges(runId: string): Promise<void> {
    const sessionId = this.session?.id;
    if (!sessionId) {
      return;
    }
    const files = await this.api.changes({ sessionId, runId });
    if (this.session?.id !== sessionId) {
      return; // another session was opened meanwhile
    }
    this.changes = files.length ? { runId, files } : this.changes?.runId === runId ? undefined : this.changes;
    this.emit([]);
  }

  /**
   * Accepts or rejects hunks of one listed file (without `hunkIds`: all its pending ones).
   * The list follows with the `change_reviewed` that comes after the answer.
   */
  async review(path: string, decision: 'accept' | 'reject', hunkIds?: string[]): Promise<void> {
    const change = this.changeOf(path);
    if (!this.session || !change) {
      return;
    }
    const ids = hunkIds ?? change.hunks.filter((h) => h.status === 'pending').map((h) => h.id);
    if (ids.length) {
      await this.api.review({ sessionId: this.session.id, path, hunks: ids.map((id) => ({ id, decision })) });
    }
  }

  /** The files a rewind to before `messageId` would restore. */
  async filesChangedSince(messageId: string): Promise<FileChange[]> {
    return this.session ? this.api.changes({ sessionId: this.session.id, sinceMessageId: messageId }) : [];
  }

  /** Goes back to just before the user message `messageId`, then shows the session as it is now. */
  async rewind(messageId: string, force = false): Promise<RewindResult> {
    const sessionId = await this.ensureSession();
    const result = await this.api.rewind(sessionId, messageId, force);
    await this.open(sessionId);
    this.canUnrewind = true;
    this.emit([]);
    return result;
  }

  async unrewind(): Promise<RewindResult> {
    const sessionId = await this.ensureSession();
    const result = await this.api.unrewind(sessionId);
    await this.open(sessionId);
    return result;
  }

  /** Cancels the active run and everything queued in this session. */
  async cancel(): Promise<number> {
    if (!this.session) {
      return 0;
    }
    return (await this.api.cancel(this.session.id)).canceled;
  }

  apply(n: Notification): void {
    if (!this.session || n.sessionId !== this.session.id) {
      return;
    }
    const changed = this.reduce(n);
    this.emit(changed);
  }

  private reduce(n: Notification): ChatEntry[] {
    switch (n.type) {
      case 'run_queued':
        this.setRunState(n.runId, 'queued');
        return [];
      case 'run_started':
        this.setRunState(n.runId, 'active');
        return [];
      case 'message_created':
        return this.addMessage(n.message);
      case 'text_delta':
        return this.touch(this.assistantEntry(n.messageId), (e) => (e.text += n.text));
      case 'reasoning_delta':
        return this.touch(this.assistantEntry(n.messageId), (e) => (e.reasoning += n.text));
      case 'tool_call':
        if (n.runId) {
          this.runsWithTools.add(n.runId);
        }
        return this.upsertCard(this.assistantEntry(n.messageId), n.toolCall);
      case 'tool_result':
        return this.setResult(n.toolCallId, n.content, n.isError, n.metadata);
      case 'permission_requested':
        return this.updateCard(n.permission.toolCallId, (c) => (c.decision = 'asking'));
      case 'permission_resolved':
        return this.updateCard(n.toolCallId, (c) => (c.decision = n.decision));
      case 'message_finished':
        return this.touch(this.assistantEntry(n.messageId), (e) => {
          e.streaming = false;
          e.finishReason = n.finishReason;
        });
      case 'session_updated':
        this.session = n.session;
        return [];
      case 'agent_error':
        return this.agentError(n.runId, n.message, n.code, n.willRetry);
      case 'run_complete':
        return this.runComplete(n);
      case 'change_reviewed':
        if (this.changes) {
          void this.refreshChanges(this.changes.runId).catch(() => undefined);
        }
        return [];
      default:
        return [];
    }
  }

  private show(session: Session, messages: Message[]): void {
    this.session = session;
    this.entries = [];
    this.entryById.clear();
    this.cardOwner.clear();
    this.runs.clear();
    this.changes = undefined;
    this.canUnrewind = false;
    for (const message of messages) {
      this.addMessage(message);
    }
    for (const entry of this.entries) {
      entry.streaming = false;
    }
    const change = this.snapshot();
    this.changeListeners.forEach((l) => l(change));
  }

  private setRunState(runId: string | undefined, state: RunState): void {
    if (!runId || this.finishedRuns.has(runId)) {
      return;
    }
    const run = this.runs.get(runId);
    if (run) {
      run.state = state;
    } else {
      // A run started elsewhere (another window, the @crush participant).
      this.runs.set(runId, { state, prompt: '' });
    }
  }

  private addMessage(message: Message): ChatEntry[] {
    if (message.role === 'tool') {
      return message.parts.flatMap((p) => (p.type === 'tool_result' ? this.setResult(p.toolCallId, p.content, p.isError, p.metadata) : []));
    }
    const entry = this.entryById.get(message.id) ?? this.addEntry(message.id, message.role);
    entry.text = '';
    entry.reasoning = '';
    entry.context = [];
    for (const part of message.parts) {
      if (part.type === 'context') {
        entry.context.push({ uri: part.uri, kind: part.kind, label: contextLabel(part) });
      } else if (part.type === 'text') {
        entry.text += part.text;
      } else if (part.type === 'reasoning') {
        entry.reasoning += part.text;
      } else if (part.type === 'tool_call') {
        this.upsertCard(entry, part);
      } else if (part.type === 'finish') {
        entry.finishReason = part.reason;
        entry.streaming = false;
      }
    }
    entry.version++;
    return [entry];
  }

  private addEntry(id: string, role: EntryRole): ChatEntry {
    const entry: ChatEntry = { id, role, text: '', reasoning: '', tools: [], context: [], streaming: role === 'assistant', version: 0 };
    this.entries.push(entry);
    this.entryById.set(id, entry);
    return entry;
  }

  private assistantEntry(messageId: string): ChatEntry {
    return this.entryById.get(messageId) ?? this.addEntry(messageId, 'assistant');
  }

  private touch(entry: ChatEntry, change: (e: ChatEntry) => void): ChatEntry[] {
    change(entry);
    entry.version++;
    return [entry];
  }

  private upsertCard(entry: ChatEntry, call: ToolCall): ChatEntry[] {
    let card = entry.tools.find((c) => c.id === call.id);
    if (!card) {
      card = { id: call.id, name: call.name, input: call.input, status: call.status };
      entry.tools.push(card);
      this.cardOwner.set(call.id, entry);
    }
    card.status = call.status;
    card.input = call.input ?? card.input;
    entry.version++;
    return [entry];
  }

  private updateCard(toolCallId: string, change: (c: ToolCard) => void): ChatEntry[] {
    const entry = this.cardOwner.get(toolCallId);
    const card = entry?.tools.find((c) => c.id === toolCallId);
    if (!entry || !card) {
      return [];
    }
    change(card);
    entry.version++;
    return [entry];
  }

  private setResult(toolCallId: string, content: string, isError: boolean, metadata?: ToolMetadata): ChatEntry[] {
    return this.updateCard(toolCallId, (card) => {
      card.content = content;
      card.isError = isError;
      if (typeof metadata?.diff === 'string') {
        card.diff = metadata.diff;
      }
      if (typeof metadata?.path === 'string') {
        card.path = metadata.path;
      }
      if (card.status !== 'completed' && card.status !== 'failed' && card.status !== 'canceled') {
        card.status = isError ? 'failed' : 'completed';
      }
    });
  }

  private agentError(runId: string | undefined, message: string, code: string, willRetry: boolean): ChatEntry[] {
    if (!willRetry && runId) {
      this.runsWithFatalError.add(runId);
    }
    const text = willRetry ? `${message} (${code}; retrying)` : `${message} (${code})`;
    if (!willRetry) {
      this.errorListeners.forEach((l) => l(text));
    }
    return [this.addError(text)];
  }

  private runComplete(n: RunCompleteNotification): ChatEntry[] {
    const runId = n.runId ?? '';
    this.runs.delete(runId);
    this.finishedRuns.add(runId);
    const changed: ChatEntry[] = [];
    if (n.messageId) {
      const entry = this.entryById.get(n.messageId);
      if (entry) {
        changed.push(...this.touch(entry, (e) => {
          e.streaming = false;
          e.finishReason = n.finishReason;
        }));
      }
    }
    if (n.finishReason === 'error' && !this.runsWithFatalError.has(runId)) {
      const text = n.error || 'The run failed.';
      this.errorListeners.forEach((l) => l(text));
      changed.push(this.addError(text));
    }
    this.runsWithFatalError.delete(runId);
    if (this.runsWithTools.delete(runId)) {
      void this.refreshChanges(runId).catch(() => undefined); // a server without agent/changes lists nothing
    }
    return changed;
  }

  private addError(text: string): ChatEntry {
    const entry = this.addEntry(`error-${this.entries.length}-${Date.now()}`, 'error');
    entry.text = text;
    entry.streaming = false;
    entry.version++;
    return entry;
  }

  private emit(entries: ChatEntry[]): void {
    const change: ChatChange = { reset: false, entries, status: this.status() };
    this.changeListeners.forEach((l) => l(change));
  }
}

function summarize(file: FileChange): ChangeSummary {
  const counted = (status: string) => file.hunks.filter((h) => h.status === status).length;
  return {
    path: file.path,
    status: file.status,
    additions: file.additions,
    removals: file.removals,
    hunks: file.hunks.length,
    accepted: counted('accepted'),
    rejected: counted('rejected'),
  };
}

/** `a.ts` for a file, `a.ts:3-5` for a range (1-based lines), `a.ts (diagnostics)`. */
export function contextLabel(item: Pick<ContextItem, 'uri' | 'range' | 'kind'>): string {
  const name = decodeURIComponent(item.uri.replace(/[?#].*$/, '').split('/').pop() || item.uri);
  if (item.kind === 'diagnostics') {
    return `${name} (diagnostics)`;
  }
  if (item.range) {
    const start = item.range.start.line + 1;
    // A selection ending at column 0 ends on the line before.
    const end = item.range.end.character === 0 && item.range.end.line > item.range.start.line ? item.range.end.line : item.range.end.line + 1;
    return start === end ? `${name}:${start}` : `${name}:${start}-${end}`;
  }
  return name;
}

export interface RunHandlers {
  onText?(text: string): void;
  onReasoning?(text: string): void;
  onToolCall?(call: ToolCall): void;
  onToolResult?(name: string, content: string, isError: boolean, metadata?: ToolMetadata): void;
  onError?(message: string, code: string, willRetry: boolean): void;
}

/**
 * Sends one prompt and streams its run to `handlers` until `run_complete`;
 * a cancelled `token` sends `agent/cancel` for this run only.
 */
export async function streamRun(
  api: CrushApi,
  request: Omit<SendMessageParams, 'runId'>,
  handlers: RunHandlers,
  token?: CancellationToken,
): Promise<RunCompleteNotification> {
  const runId = newRunId();
  const { sessionId } = request;
  const wait = api.waitForRun(runId, (n) => dispatchRunEvent(n, handlers));
  let cancelListener: Disposable | undefined;
  try {
    await api.sendMessage({ ...request, runId });
    const cancel = () => void api.cancel(sessionId, runId).catch((e) => handlers.onError?.(CrushError.from(e).message, 'cancel', false));
    if (token?.isCancellationRequested) {
      cancel();
    } else {
      cancelListener = token?.onCancellationRequested(cancel);
    }
    return await wait.done;
  } finally {
    wait.dispose();
    cancelListener?.dispose();
  }
}

function dispatchRunEvent(n: Notification, handlers: RunHandlers): void {
  switch (n.type) {
    case 'text_delta':
      handlers.onText?.(n.text);
      break;
    case 'reasoning_delta':
      handlers.onReasoning?.(n.text);
      break;
    case 'tool_call':
      handlers.onToolCall?.(n.toolCall);
      break;
    case 'tool_result':
      handlers.onToolResult?.(n.name, n.content, n.isError, n.metadata);
      break;
    case 'agent_error':
      handlers.onError?.(n.message, n.code, n.willRetry);
      break;
  }
}
