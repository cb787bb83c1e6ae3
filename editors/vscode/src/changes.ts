// Review of what a turn changed: VS Code's diff editor (before vs the file as
// it is now) for each file of the changed-files list, Accept / Reject CodeLens
// over each hunk of the open file, and the accept-all / reject-all commands.
// The data is the ChatSession's last `agent/changes`; decisions go to `agent/review`.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { CrushConnection, errorMessage } from './connection';
import { FileChange, Hunk } from './protocol';
import { ChatSession } from './session';

/** The before text of a changed file: `crush-before:/<path>` (`?deleted`: the empty now of a deleted one). */
export const BEFORE_SCHEME = 'crush-before';

export class ChangesController implements vscode.Disposable {
  private chat: ChatSession | undefined;
  private chatSubscription: vscode.Disposable | undefined;
  private listed = '';
  private readonly beforeChanged = new vscode.EventEmitter<vscode.Uri>();
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[];

  constructor(connection: CrushConnection) {
    this.disposables = [
      this.beforeChanged,
      this.lensesChanged,
      connection.onDidStart((started) => this.follow(started.chat)),
      vscode.workspace.registerTextDocumentContentProvider(BEFORE_SCHEME, {
        onDidChange: this.beforeChanged.event,
        provideTextDocumentContent: (uri) => (uri.query === 'deleted' ? '' : this.chat?.changeOf(uri.path.slice(1))?.before ?? ''),
      }),
      vscode.languages.registerCodeLensProvider({ scheme: 'file' }, {
        onDidChangeCodeLenses: this.lensesChanged.event,
        provideCodeLenses: (document) => this.lenses(document),
      }),
      vscode.commands.registerCommand('crush.openChange', (p: string) => this.open(p)),
      vscode.commands.registerCommand('crush.acceptHunk', (p: string, id: string) => this.review(p, 'accept', [id])),
      vscode.commands.registerCommand('crush.rejectHunk', (p: string, id: string) => this.review(p, 'reject', [id])),
      vscode.commands.registerCommand('crush.acceptFile', (p: string) => this.review(p, 'accept')),
      vscode.commands.registerCommand('crush.rejectFile', (p: string) => this.review(p, 'reject')),
      vscode.commands.registerCommand('crush.acceptAll', () => this.reviewAll('accept')),
      vscode.commands.registerCommand('crush.rejectAll', () => this.reviewAll('reject')),
    ];
  }

  dispose(): void {
    this.chatSubscription?.dispose();
    this.disposables.forEach((d) => d.dispose());
  }

  /** Opens the diff editor of one listed file: before the turn vs the file now. */
  async open(relative: string): Promise<void> {
    const change = this.chat?.changeOf(relative);
    if (!change) {
      void vscode.window.showWarningMessage(`Crush: ${relative} is not among the changed files any more.`);
      return;
    }
    const before = this.beforeUri(change);
    // A deleted file has no "now": its right side is empty.
    const now = change.status === 'deleted' ? before.with({ query: 'deleted' }) : fileUri(change);
    await vscode.commands.executeCommand('vscode.diff', before, now, `${relative} (Crush: before ↔ now)`, { preview: true });
  }

  private follow(chat: ChatSession): void {
    this.chat = chat;
    this.chatSubscription?.dispose();
    this.chatSubscription = chat.onDidChange((c) => {
      const listed = JSON.stringify(c.status.changes ?? null);
      if (listed !== this.listed) {
        this.listed = listed;
        this.lensesChanged.fire();
        c.status.changes?.files.forEach((f) => this.beforeChanged.fire(this.beforeUri(f)));
      }
    });
  }

  private beforeUri(change: Pick<FileChange, 'path'>): vscode.Uri {
    return vscode.Uri.from({ scheme: BEFORE_SCHEME, path: `/${change.path}` });
  }

  private lenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const files = (this.chat?.status().changes?.files ?? []).map((f) => this.chat?.changeOf(f.path));
    const change = files.find((f) => f && fileUri(f).toString() === document.uri.toString());
    if (!change) {
      return [];
    }
    return change.hunks.flatMap((hunk, index) => {
      if (hunk.status !== 'pending') {
        return [];
      }
      const line = Math.min(firstChangedLine(hunk), Math.max(document.lineCount - 1, 0));
      const range = new vscode.Range(line, 0, line, 0);
      const what = `hunk ${index + 1} of ${change.hunks.length}`;
      return [
        new vscode.CodeLens(range, { title: `Crush: Accept ${what}`, command: 'crush.acceptHunk', arguments: [change.path, hunk.id] }),
        new vscode.CodeLens(range, { title: 'Reject', command: 'crush.rejectHunk', arguments: [change.path, hunk.id] }),
      ];
    });
  }

  private async review(relative: string, decision: 'accept' | 'reject', hunkIds?: string[]): Promise<void> {
    try {
      await this.chat?.review(relative, decision, hunkIds);
    } catch (error) {
      void vscode.window.showErrorMessage(`Crush: could not ${decision} the change of ${relative}: ${errorMessage(error)}`);
    }
  }

  private async reviewAll(decision: 'accept' | 'reject'): Promise<void> {
    for (const file of this.chat?.status().changes?.files ?? []) {
      await this.review(file.path, decision);
    }
  }
}

/** The 0-based line of the agent's text where a hunk's change starts (after its leading context). */
function firstChangedLine(hunk: Hunk): number {
  const context = hunk.lines.findIndex((l) => !l.startsWith(' '));
  return Math.max(hunk.newStart - 1 + Math.max(context, 0), 0);
}

/** The workspace file of a change (paths are relative to the first folder, or absolute). */
export function fileUri(change: Pick<FileChange, 'path'> & { uri?: string }): vscode.Uri {
  if (change.uri) {
    return vscode.Uri.parse(change.uri);
  }
  if (path.isAbsolute(change.path)) {
    return vscode.Uri.file(change.path);
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  return folder ? vscode.Uri.joinPath(folder, change.path) : vscode.Uri.file(change.path);
}
