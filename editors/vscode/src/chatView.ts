// The `crush.chat` webview view: renders ChatSession changes and turns the
// webview's buttons into the same operations as the crush.* commands.

import * as vscode from 'vscode';
import { CrushConnection, ServerStartError, ServerStatus, Started, errorMessage } from './connection';
import { ActiveEditorContext } from './editorContext';
import { FileChange, RewindResult, SendMessageResult } from './protocol';
import { ChatChange, ChatEntry, ChatSession, ChatStatus } from './session';

type FromWebview =
  | { type: 'ready' }
  | { type: 'send'; text: string }
  | { type: 'cancel' }
  | { type: 'newSession' }
  | { type: 'pickSession' }
  | { type: 'openSession'; sessionId: string }
  | { type: 'removeContext'; key: string }
  | { type: 'takeBack' }
  | { type: 'openChange'; path: string }
  | { type: 'review'; path?: string; decision: 'accept' | 'reject' }
  | { type: 'rewind'; messageId: string }
  | { type: 'unrewind' };

/** Coalesces streamed changes into at most one post per frame. */
const FLUSH_MS = 16;

function rewindAction(file: FileChange): string {
  return file.status === 'added' ? 'deleted: Crush created it' : file.status === 'deleted' ? 'brought back' : 'restored';
}

function ellipsis(text: string, max: number): string {
  const line = text.trim().replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function restoredText(restored: RewindResult['restored']): string {
  return restored.length ? `; back: ${restored.map((r) => r.path).join(', ')}` : '';
}

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'crush.chat';
  private view: vscode.WebviewView | undefined;
  private followed: ChatSession | undefined;
  private chatSubscription: vscode.Disposable | undefined;
  private readonly pending = new Map<string, ChatEntry>();
  private pendingReset = false;
  private pendingStatus: ChatStatus | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** What the view says about the server (a failure, a reconnect), also for a view opened later. */
  private serverStatus: ServerStatus | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly connection: CrushConnection,
    private readonly editorContext: ActiveEditorContext,
  ) {
    this.disposables.push(
      connection.onDidStart((started) => {
        this.showServerStatus(undefined);
        this.follow(started.chat);
      }),
      connection.onDidChangeStatus((status) => this.showServerStatus(status)),
      editorContext.onDidChange(() => this.postContext()),
    );
  }

  dispose(): void {
    this.chatSubscription?.dispose();
    this.disposables.forEach((d) => d.dispose());
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const webview = view.webview;
    webview.options = { enableScripts: true, localResourceRoots: [this.extensionUri] };
    webview.html = this.html(webview);
    webview.onDidReceiveMessage((m: FromWebview) => void this.handle(m), undefined, this.disposables);
    view.onDidDispose(() => (this.view = undefined), undefined, this.disposables);
  }

  /** Runs one of the view's operations, showing failures instead of dropping them. */
  async run<T>(operation: (chat: ChatSession, started: Started) => Promise<T>): Promise<T | undefined> {
    try {
      const started = await this.connection.get();
      this.follow(started.chat);
      return await operation(started.chat, started);
    } catch (error) {
      if (error instanceof ServerStartError) {
        return undefined; // already in the view and in one notification
      }
      const message = `Crush: ${errorMessage(error)}`;
      this.post({ type: 'error', message });
      void vscode.window.showErrorMessage(message);
      return undefined;
    }
  }

  async pickSession(): Promise<void> {
    await this.run(async (chat) => {
      const sessions = await chat.listSessions();
      const items = sessions.map((s) => ({
        label: s.title || '(untitled)',
        description: `${s.messageCount} messages${s.busy ? ' · busy' : ''}`,
        detail: new Date(s.updatedAt).toLocaleString(),
        id: s.id,
      }));
      const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Open a Crush session' });
      if (picked) {
        await chat.open(picked.id);
        await this.postSessions(chat);
      }
    });
  }

  /** Sends a prompt with the context chips the view shows. */
  send(text: string): Promise<SendMessageResult | undefined> {
    return this.run(async (chat) => {
      const hadSession = chat.sessionId !== undefined;
      const result = await chat.send(text, 'queue', this.editorContext.items());
      if (!hadSession) {
        await this.postSessions(chat);
      }
      return result;
    });
  }

  async newSession(): Promise<void> {
    await this.run(async (chat) => {
      await chat.newSession();
      await this.postSessions(chat);
    });
  }

  private async handle(message: FromWebview): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.showServerStatus(this.serverStatus);
        this.postContext();
        await this.run(async (chat) => {
          this.post({ type: 'change', ...chat.snapshot() });
          await this.postSessions(chat);
        });
        break;
      case 'send':
        await this.send(message.text);
        break;
      case 'cancel':
        await this.run((chat) => chat.cancel());
        break;
      case 'newSession':
        await this.newSession();
        break;
      case 'pickSession':
        await this.pickSession();
        break;
      case 'openSession':
        await this.run((chat) => chat.open(message.sessionId));
        break;
      case 'removeContext':
        this.editorContext.remove(message.key);
        break;
      case 'takeBack':
        await this.run(async (chat) => {
          const prompt = await chat.takeBack();
          if (prompt !== undefined) {
            this.post({ type: 'setPrompt', text: prompt });
          }
        });
        break;
      case 'openChange':
        await vscode.commands.executeCommand('crush.openChange', message.path);
        break;
      case 'review':
        await (message.path
          ? vscode.commands.executeCommand(message.decision === 'accept' ? 'crush.acceptFile' : 'crush.rejectFile', message.path)
          : vscode.commands.executeCommand(message.decision === 'accept' ? 'crush.acceptAll' : 'crush.rejectAll'));
        break;
      case 'rewind':
        await this.run((chat) => this.rewind(chat, message.messageId));
        break;
      case 'unrewind':
        await this.run(async (chat) => {
          const result = await chat.unrewind();
          void vscode.window.showInformationMessage(`Crush: rewind undone${restoredText(result.restored)}.`);
        });
        break;
    }
  }

  /** Asks first, naming the files it will restore; then rewinds and puts the prompt back in the box. */
  private async rewind(chat: ChatSession, messageId: string): Promise<void> {
    const entry = chat.snapshot().entries.find((e) => e.id === messageId);
    const files = await chat.filesChangedSince(messageId);
    const detail = files.length
      ? `These files go back to how they were before it:\n${files.map((f) => `${f.path} (${rewindAction(f)})`).join('\n')}`
      : 'No file was changed from there on.';
    const choice = await vscode.window.showWarningMessage(
      `Rewind to before "${ellipsis(entry?.text ?? 'this message', 60)}"? The messages from there on are hidden.`,
      { modal: true, detail },
      'Rewind',
    );
    if (choice !== 'Rewind') {
      return;
    }
    const result = await chat.rewind(messageId);
    if (entry?.text) {
      this.post({ type: 'setPrompt', text: entry.text });
    }
    if (result.conflicts.length) {
      const paths = result.conflicts.map((c) => c.path).join(', ');
      void vscode.window.showWarningMessage(`Crush: rewound, but left ${paths} as you changed ${result.conflicts.length > 1 ? 'them' : 'it'} after the agent did.`);
    }
  }

  private postContext(): void {
    this.post({ type: 'context', chips: this.editorContext.current().map(({ key, label, kind, title }) => ({ key, label, kind, title })) });
  }

  private showServerStatus(status: ServerStatus | undefined): void {
    this.serverStatus = status;
    this.post({ type: 'server', kind: status?.kind, message: status?.message });
  }

  /** Shows `chat` (a new one after every server restart) from now on. */
  private follow(chat: ChatSession): void {
    if (this.followed === chat) {
      return;
    }
    this.followed = chat;
    this.chatSubscription?.dispose();
    this.chatSubscription = chat.onDidChange((change) => this.queue(change));
    this.queue(chat.snapshot());
  }

  private queue(change: ChatChange): void {
    if (change.reset) {
      this.pending.clear();
      this.pendingReset = true;
    }
    change.entries.forEach((e) => this.pending.set(e.id, e));
    this.pendingStatus = change.status;
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const change: ChatChange = {
      reset: this.pendingReset,
      entries: [...this.pending.values()],
      status: this.pendingStatus ?? { busy: false, queued: [] },
    };
    this.pending.clear();
    this.pendingReset = false;
    this.post({ type: 'change', ...change });
  }

  private async postSessions(chat: ChatSession): Promise<void> {
    const sessions = await chat.listSessions();
    this.post({ type: 'sessions', currentId: chat.sessionId, sessions: sessions.map((s) => ({ id: s.id, title: s.title })) });
  }

  private post(message: object): void {
    void this.view?.webview.postMessage(message);
  }

  private html(webview: vscode.Webview): string {
    const nonce = globalThis.crypto.randomUUID().replace(/-/g, '');
    const asset = (...path: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, ...path)).toString();
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
      `img-src ${webview.cspSource} data:`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${asset('media', 'chat.css')}">
  <title>Crush</title>
</head>
<body>
  <header id="toolbar">
    <select id="sessions" title="Session"></select>
    <button id="pick-session" class="icon" title="Pick a session">☰</button>
    <button id="new-session" class="icon" title="New session">+</button>
  </header>
  <main id="messages" aria-live="polite"></main>
  <section id="changes" hidden>
    <div class="changes-head"><span id="changes-title"></span>
      <button id="accept-all" class="secondary" title="Keep every change of this turn">Accept all</button>
      <button id="reject-all" class="secondary" title="Revert every change of this turn">Reject all</button>
    </div>
    <ul id="changes-list"></ul>
  </section>
  <div id="rewound" hidden>Rewound. <button id="unrewind" class="secondary">Undo rewind</button></div>
  <div id="status"><span id="busy" hidden>Working…</span><span id="queue" hidden></span><button id="take-back" class="link" hidden title="Put the last queued prompt back in the box">take back</button></div>
  <div id="server" role="status" hidden></div>
  <div id="error" role="alert" hidden></div>
  <form id="composer">
    <div id="context" aria-label="Context sent with the prompt"></div>
    <textarea id="prompt" rows="3" placeholder="Ask Crush… (Enter to send, Shift+Enter for a new line)"></textarea>
    <div class="buttons">
      <button id="send" type="submit">Send</button>
      <button id="cancel" type="button" class="secondary">Cancel</button>
    </div>
  </form>
  <script nonce="${nonce}" src="${asset('node_modules', 'marked', 'lib', 'marked.umd.js')}"></script>
  <script nonce="${nonce}" src="${asset('media', 'chat.js')}"></script>
</body>
</html>`;
  }
}
