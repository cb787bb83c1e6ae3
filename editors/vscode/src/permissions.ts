// `agent/requestPermission` as a modal dialog: Allow / Allow for session / Deny.

import * as vscode from 'vscode';
import { CancellationToken, Decision, PermissionRequest } from './protocol';

const ALLOW = 'Allow';
const ALLOW_SESSION = 'Allow for Session';
const DENY = 'Deny';

export async function askPermission(request: PermissionRequest, token: CancellationToken): Promise<Decision> {
  const p = request.permission;
  const target = p.path ? ` ${p.path}` : '';
  const message = `Crush wants to ${p.action}${target} (tool "${p.tool}").`;
  const detail = `${p.description}\n\n${summarize(p.input)}`;
  const withdrawn = token.onCancellationRequested(() => {
    // A modal cannot be closed from code; say that the answer no longer matters.
    void vscode.window.showInformationMessage(`Crush: the permission request for ${p.tool}${target} was withdrawn.`);
  });
  try {
    const choice = await vscode.window.showWarningMessage(message, { modal: true, detail }, ALLOW, ALLOW_SESSION, DENY);
    if (choice === ALLOW) {
      return 'allow';
    }
    return choice === ALLOW_SESSION ? 'allow_session' : 'deny';
  } finally {
    withdrawn.dispose();
  }
}

function summarize(input: unknown): string {
  const text = JSON.stringify(input, null, 2) ?? '';
  return text.length > 800 ? `${text.slice(0, 800)}…` : text;
}
