// Starts crush-ls with vscode-languageclient and hands out the typed API and
// the chat session of the first workspace folder. Restarts on setting changes.

import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions, State, TransportKind } from 'vscode-languageclient/node';
import { CLIENT_EXPERIMENTAL_CAPABILITIES, CrushApi, buildInitializationOptions, parseModelSetting } from './protocol';
import { ChatSession } from './session';
import { askPermission } from './permissions';

export interface Started {
  client: LanguageClient;
  api: CrushApi;
  chat: ChatSession;
}

export class CrushConnection implements vscode.Disposable {
  readonly output = vscode.window.createOutputChannel('Crush', { log: true });
  private current: Promise<Started> | undefined;
  private readonly startedEmitter = new vscode.EventEmitter<Started>();
  /** Fires after every (re)start, so views can follow the new chat session. */
  readonly onDidStart = this.startedEmitter.event;
  private readonly disposables: vscode.Disposable[] = [this.output, this.startedEmitter];

  constructor() {
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)));
  }

  /** The running connection, started on first use. Rejects (after telling the user) when the server cannot start. */
  get(): Promise<Started> {
    if (!this.current) {
      this.current = this.start();
      this.current.catch(() => (this.current = undefined));
    }
    return this.current;
  }

  async restart(): Promise<Started> {
    await this.stop();
    return this.get();
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.disposables.forEach((d) => d.dispose());
  }

  private async start(): Promise<Started> {
    const config = vscode.workspace.getConfiguration('crush');
    const command = config.get<string>('server.command') || 'crush-ls';
    const args = config.get<string[]>('server.args') ?? [];
    const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: this.output,
      initializationOptions: buildInitializationOptions(config.get('model'), config.get('permissions.mode')),
    };
    const client = new LanguageClient('crush', 'Crush', serverOptions, clientOptions);
    client.registerFeature({
      fillClientCapabilities: (capabilities) => {
        capabilities.experimental = { ...(capabilities.experimental as object | undefined), ...CLIENT_EXPERIMENTAL_CAPABILITIES };
      },
      initialize: () => undefined,
      getState: () => ({ kind: 'static' }),
      clear: () => undefined,
    });
    client.onDidChangeState((e) => {
      if (e.oldState === State.Running && e.newState === State.Stopped) {
        void vscode.window.showErrorMessage('Crush: the crush-ls server stopped. See the "Crush" output for its log.');
      }
    });
    try {
      await client.start();
    } catch (error) {
      this.output.appendLine(`Could not start ${command} ${args.join(' ')}: ${String(error)}`);
      void vscode.window
        .showErrorMessage(`Crush: could not start "${command}": ${errorMessage(error)}. Set "crush.server.command".`, 'Open Settings')
        .then((choice) => choice && vscode.commands.executeCommand('workbench.action.openSettings', 'crush.server'));
      await client.dispose().catch(() => undefined);
      throw error;
    }
    const folder = vscode.workspace.workspaceFolders?.[0];
    const workspace = folder ? client.code2ProtocolConverter.asUri(folder.uri) : undefined;
    const api = new CrushApi(client, workspace);
    api.setPermissionHandler(askPermission);
    const chat = new ChatSession(api);
    chat.onError((message) => void vscode.window.showErrorMessage(`Crush: ${message}`));
    const started = { client, api, chat };
    this.startedEmitter.fire(started);
    return started;
  }

  private async stop(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    if (!current) {
      return;
    }
    const started = await current.catch(() => undefined);
    if (started) {
      started.chat.dispose();
      started.api.dispose();
      await started.client.stop().catch((e) => this.output.appendLine(`stop failed: ${String(e)}`));
    }
  }

  private async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (e.affectsConfiguration('crush.server') || e.affectsConfiguration('crush.permissions')) {
      if (this.current) {
        await this.restart().catch(() => undefined);
      }
    } else if (e.affectsConfiguration('crush.model') && this.current) {
      const model = parseModelSetting(vscode.workspace.getConfiguration('crush').get('model'));
      if (model) {
        try {
          await (await this.get()).api.setModel(model);
        } catch (error) {
          void vscode.window.showErrorMessage(`Crush: could not switch model: ${errorMessage(error)}`);
        }
      }
    }
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
