// What the person is looking at, sent with each prompt of the chat view as
// `context`: the active editor's file and its selection. The view shows each
// as a chip the person can remove; a removed chip stays removed until the
// active file or the selection changes.

import * as vscode from 'vscode';
import { ContextItem } from './protocol';
import { contextLabel } from './session';

/** Selections larger than this are cut (the file itself is in context anyway). */
const MAX_SELECTION_CHARS = 20_000;
/** crush-ls takes at most this many context items with a prompt. */
const MAX_ITEMS = 32;

export interface Chip {
  key: string;
  label: string;
  kind: ContextItem['kind'];
  /** The workspace-relative path, for the tooltip. */
  title: string;
  item: ContextItem;
}

export class ActiveEditorContext implements vscode.Disposable {
  private chips: Chip[] = [];
  private readonly removed = new Set<string>();
  private readonly emitter = new vscode.EventEmitter<Chip[]>();
  private readonly disposables: vscode.Disposable[];
  /** Fires with the chips to show whenever they change. */
  readonly onDidChange = this.emitter.event;

  constructor() {
    this.disposables = [
      this.emitter,
      vscode.window.onDidChangeActiveTextEditor((editor) => this.update(editor)),
      vscode.window.onDidChangeTextEditorSelection((e) => e.textEditor === vscode.window.activeTextEditor && this.update(e.textEditor)),
    ];
    this.update(vscode.window.activeTextEditor);
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }

  /** The chips still shown. */
  current(): Chip[] {
    return this.chips.filter((c) => !this.removed.has(c.key));
  }

  /** What goes with the next prompt. */
  items(): ContextItem[] {
    return this.current().map((c) => c.item);
  }

  remove(key: string): void {
    this.removed.add(key);
    this.emitter.fire(this.current());
  }

  private update(editor: vscode.TextEditor | undefined): void {
    if (editor && !isWorkspaceFile(editor.document.uri)) {
      return; // the output panel, a diff's before side, ...: keep showing the last file
    }
    if (!editor && vscode.window.visibleTextEditors.some((e) => isWorkspaceFile(e.document.uri))) {
      return; // focus went to a view: the file is still on screen
    }
    const next = editor ? chipsOf(editor) : [];
    if (next.map((c) => c.key).join('\n') === this.chips.map((c) => c.key).join('\n')) {
      return;
    }
    if (next[0]?.key !== this.chips[0]?.key) {
      this.removed.clear(); // another file: its chips start shown
    }
    this.chips = next;
    this.emitter.fire(this.current());
  }
}

function chipsOf(editor: vscode.TextEditor): Chip[] {
  const document = editor.document;
  const uri = document.uri.toString();
  const title = vscode.workspace.asRelativePath(document.uri);
  const file: ContextItem = { uri, kind: 'file' };
  const chips: Chip[] = [{ key: `file ${uri}`, label: contextLabel(file), kind: 'file', title, item: file }];
  const selection = editor.selection;
  if (!selection.isEmpty) {
    const range = {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    };
    const item: ContextItem = { uri, range, kind: 'selection', text: document.getText(selection).slice(0, MAX_SELECTION_CHARS) };
    const lines = contextLabel(item);
    chips.push({ key: `selection ${uri} ${lines}`, label: lines, kind: 'selection', title: `selection of ${title}`, item });
  }
  return chips;
}

export function isWorkspaceFile(uri: vscode.Uri): boolean {
  return uri.scheme === 'file' && vscode.workspace.getWorkspaceFolder(uri) !== undefined;
}

/**
 * VS Code chat references as context items: `#file`, `#selection` and VS Code's
 * own chips of the active editor (its selection, which VS Code attaches by itself,
 * or the current file once the person added it). A selection brings its file along,
 * as in the Crush view.
 */
export async function contextOfReferences(references: readonly vscode.ChatPromptReference[]): Promise<ContextItem[]> {
  const items: ContextItem[] = [];
  const addFile = async (uri: vscode.Uri) => {
    if (items.some((i) => i.kind === 'file' && i.uri === uri.toString())) {
      return;
    }
    // crush-ls reads a workspace file itself (the open buffer included); one outside the
    // folders it only takes with its text.
    if (isWorkspaceFile(uri)) {
      items.push({ uri: uri.toString(), kind: 'file' });
      return;
    }
    const text = await textOf(uri);
    if (text !== undefined) {
      items.push({ uri: uri.toString(), kind: 'file', text });
    }
  };
  for (const reference of references) {
    const value = reference.value;
    if (value instanceof vscode.Uri && value.scheme === 'file') {
      await addFile(value);
    } else if (value instanceof vscode.Location && value.uri.scheme === 'file' && reference.id === 'vscode.implicit.viewport') {
      await addFile(value.uri); // what is scrolled into view: the file, not a selection
    } else if (value instanceof vscode.Location && value.uri.scheme === 'file') {
      const document = await vscode.workspace.openTextDocument(value.uri);
      const { start, end } = value.range;
      await addFile(value.uri);
      items.push({
        uri: value.uri.toString(),
        kind: 'selection',
        range: { start: { line: start.line, character: start.character }, end: { line: end.line, character: end.character } },
        text: document.getText(value.range).slice(0, MAX_SELECTION_CHARS),
      });
    }
  }
  return items.slice(0, MAX_ITEMS);
}

async function textOf(uri: vscode.Uri): Promise<string | undefined> {
  try {
    return (await vscode.workspace.openTextDocument(uri)).getText();
  } catch {
    return undefined; // binary or gone: named in the prompt's references, not inlined
  }
}
