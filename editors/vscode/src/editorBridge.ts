// The editor's answers to crush-ls' requests about documents: `agent/saveDocument`
// (save what the agent edited) and `agent/diagnostics` (what VS Code's language
// features report). Edits themselves arrive as `workspace/applyEdit`, which
// vscode-languageclient applies into the documents (and their undo stacks).

import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import { isWorkspaceFile } from './editorContext';
import { DiagnosticsResult, EditorHandlers } from './protocol';

/** How long diagnostics of a just-edited document may take to follow the edit. */
const FRESH_DIAGNOSTICS_MS = 1500;

export class EditorBridge implements EditorHandlers, vscode.Disposable {
  /** When each document last changed and when its diagnostics last changed (ms). */
  private readonly changedAt = new Map<string, number>();
  private readonly diagnosedAt = new Map<string, number>();
  private readonly disposables: vscode.Disposable[];

  constructor(private readonly client: LanguageClient) {
    this.disposables = [
      vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length && this.changedAt.set(e.document.uri.toString(), Date.now())),
      vscode.languages.onDidChangeDiagnostics((e) => e.uris.forEach((uri) => this.diagnosedAt.set(uri.toString(), Date.now()))),
    ];
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }

  async saveDocument(uri: string): Promise<boolean> {
    const document = this.openDocument(uri);
    return document ? document.save() : false;
  }

  async diagnostics(uris: string[] | undefined): Promise<DiagnosticsResult['items']> {
    const c2p = this.client.code2ProtocolConverter;
    const entries: Array<[vscode.Uri, vscode.Diagnostic[]]> = uris
      ? await Promise.all(uris.map(async (u) => {
        const uri = this.client.protocol2CodeConverter.asUri(u);
        await this.settled(uri);
        return [uri, vscode.languages.getDiagnostics(uri)] as [vscode.Uri, vscode.Diagnostic[]];
      }))
      : vscode.languages.getDiagnostics().filter(([uri, list]) => list.length > 0 && isWorkspaceFile(uri));
    return Promise.all(entries.map(async ([uri, list]) => ({ uri: c2p.asUri(uri), diagnostics: await c2p.asDiagnostics(list) })));
  }

  private openDocument(uri: string): vscode.TextDocument | undefined {
    const wanted = this.client.protocol2CodeConverter.asUri(uri).toString();
    return vscode.workspace.textDocuments.find((d) => d.uri.toString() === wanted);
  }

  /**
   * Waits (bounded) for the diagnostics of a document edited after they were last
   * reported, when something reports diagnostics for it at all (plain text: nothing does).
   */
  private async settled(uri: vscode.Uri): Promise<void> {
    const key = uri.toString();
    const diagnosed = this.diagnosedAt.get(key);
    if (diagnosed === undefined || (this.changedAt.get(key) ?? 0) <= diagnosed) {
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FRESH_DIAGNOSTICS_MS);
      const subscription = vscode.languages.onDidChangeDiagnostics((e) => e.uris.some((u) => u.toString() === key) && done());
      function done(): void {
        clearTimeout(timer);
        subscription.dispose();
        resolve();
      }
    });
  }
}

/** The documents crush-ls mirrors: `file:` documents inside a workspace folder. */
export function workspaceDocumentSelector(): Array<{ scheme: string; pattern: { baseUri: string; pattern: string } }> {
  return (vscode.workspace.workspaceFolders ?? []).map((folder) => ({
    scheme: 'file',
    pattern: { baseUri: folder.uri.toString(), pattern: '**/*' },
  }));
}
