// Entry point: wires the connection, the chat view, the @crush participant
// and the crush.* commands.

import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';
import { ChangesController } from './changes';
import { CrushConnection } from './connection';
import { ActiveEditorContext } from './editorContext';
import { McpStatus } from './mcpStatus';
import { registerParticipant } from './participant';
import { SendMessageResult } from './protocol';

let connection: CrushConnection | undefined;

export function activate(context: vscode.ExtensionContext): void {
  connection = new CrushConnection(context);
  const editorContext = new ActiveEditorContext();
  const view = new ChatViewProvider(context.extensionUri, connection, editorContext);
  const mcp = new McpStatus(connection);
  context.subscriptions.push(
    connection,
    editorContext,
    view,
    mcp,
    new ChangesController(connection),
    vscode.commands.registerCommand('crush.mcpServers', () => mcp.pick()),
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, view),
    vscode.commands.registerCommand('crush.send', (text?: unknown) => send(view, text)),
    vscode.commands.registerCommand('crush.cancel', () => view.run((chat) => chat.cancel())),
    vscode.commands.registerCommand('crush.newSession', () => view.newSession()),
    vscode.commands.registerCommand('crush.pickSession', () => view.pickSession()),
    vscode.commands.registerCommand('crush.install', () => connection?.install()),
    vscode.commands.registerCommand('crush.restartServer', () => connection?.restart().catch(() => undefined)),
    vscode.commands.registerCommand('crush.showLog', () => connection?.showLog()),
  );
  // Older hosts (and some forks) have no chat API; the view and commands work without it.
  if (typeof vscode.chat?.createChatParticipant === 'function') {
    context.subscriptions.push(registerParticipant(connection));
  }
  // Start the server now so the first prompt does not wait for it; a failure is shown once, by the connection.
  connection.get().catch(() => undefined);
}

export async function deactivate(): Promise<void> {
  await connection?.dispose();
  connection = undefined;
}

/** `crush.send` with a text argument sends it; without one it asks for the prompt. */
async function send(view: ChatViewProvider, text?: unknown): Promise<SendMessageResult | undefined> {
  const prompt = typeof text === 'string' && text.trim() ? text : await vscode.window.showInputBox({ prompt: 'Ask Crush' });
  if (!prompt) {
    return undefined;
  }
  await vscode.commands.executeCommand(`${ChatViewProvider.viewId}.focus`);
  return view.send(prompt);
}
