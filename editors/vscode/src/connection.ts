// Starts crush-ls with vscode-languageclient and hands out the typed API and
// the chat session of the first workspace folder. Restarts on setting changes
// and after a crash (a bounded number of times); explains a server that cannot
// start (command, exit code, stderr tail) and offers to install one.

import * as vscode from 'vscode';
import { CloseAction, ErrorAction, LanguageClient, LanguageClientOptions, RevealOutputChannelOn, ServerOptions } from 'vscode-languageclient/node';
import { CLIENT_EXPERIMENTAL_CAPABILITIES, CrushApi, buildInitializationOptions, parseModelSetting } from './protocol';
import { ChatSession } from './session';
import { askPermission } from './permissions';
import { EditorBridge, workspaceDocumentSelector } from './editorBridge';
import { InstallError, installServer, installedServer, run } from './install';
import { ServerProcess, SpawnError, describeExit, describeFailure } from './serverProcess';

export interface Started {
  client: LanguageClient;
  api: CrushApi;
  chat: ChatSession;
  process: ServerProcess | undefined;
  bridge: EditorBridge;
}

/** What the view shows about the server, beside the chat. */
export interface ServerStatus {
  kind: 'failed' | 'reconnecting' | 'reconnected' | 'gave-up' | 'installed';
  message: string;
}

/** A start failure the user has already been told about (one notification, not one per caller). */
export class ServerStartError extends Error {}

/** Crashes within RESTART_WINDOW_MS that are restarted; the next one stops the restarts. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 5 * 60_000;
const EXIT_GRACE_MS = 2_000;
const ACTIONS = ['Open Settings', 'Show Log', 'Install crush-ls'] as const;

interface Launch {
  command: string;
  args: string[];
  /** Set in the settings by the user (else: the installed server, or `crush-ls` on the PATH). */
  configured: boolean;
}

/**
 * The extension explains failures itself; the client's own toasts ("couldn't create
 * connection to server", "Pending response rejected ...") only go to the log.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | 'force'): void {
    super.error(message, data, false);
  }
}

export class CrushConnection implements vscode.Disposable {
  readonly output = vscode.window.createOutputChannel('Crush', { log: true });
  private current: Promise<Started> | undefined;
  private failure: ServerStartError | undefined;
  private crashes: number[] = [];
  private readonly stopping = new WeakSet<LanguageClient>();
  private autoInstallTried = false;
  private applyingInstall = false;
  private readonly startedEmitter = new vscode.EventEmitter<Started>();
  private readonly statusEmitter = new vscode.EventEmitter<ServerStatus>();
  /** Fires after every (re)start, so views can follow the new chat session. */
  readonly onDidStart = this.startedEmitter.event;
  /** Fires when the server fails, reconnects or is given up on. */
  readonly onDidChangeStatus = this.statusEmitter.event;
  private readonly disposables: vscode.Disposable[] = [this.output, this.startedEmitter, this.statusEmitter];

  constructor(private readonly context: vscode.ExtensionContext) {
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)));
  }

  /** The running connection, started on first use. Rejects (after telling the user once) when the server cannot start. */
  get(): Promise<Started> {
    if (this.failure) {
      return Promise.reject(this.failure);
    }
    if (!this.current) {
      this.current = this.start();
      this.current.catch(() => (this.current = undefined));
    }
    return this.current;
  }

  /** A fresh start: forgets an earlier failure and the crash count. */
  async restart(): Promise<Started> {
    await this.stop();
    this.failure = undefined;
    this.crashes = [];
    return this.get();
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.disposables.forEach((d) => d.dispose());
  }

  /** "Crush: Install crush-ls" (and the notification's action): install, then use the new server. */
  async install(): Promise<void> {
    let server: string;
    try {
      server = await installServer(this.context, this.output);
    } catch (error) {
      this.reportInstallFailure(error);
      return;
    }
    if (this.launch().configured) {
      // The settings name another command: point them at the new server.
      this.applyingInstall = true;
      try {
        const config = vscode.workspace.getConfiguration('crush');
        await config.update('server.command', server, vscode.ConfigurationTarget.Global);
        await config.update('server.args', [], vscode.ConfigurationTarget.Global);
      } finally {
        this.applyingInstall = false;
      }
    }
    this.statusEmitter.fire({ kind: 'installed', message: `crush-ls is installed (${server}); starting it.` });
    await this.restart().catch(() => undefined);
  }

  private launch(): Launch {
    const config = vscode.workspace.getConfiguration('crush');
    const inspected = config.inspect<string>('server.command');
    const explicit = inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    const args = config.get<string[]>('server.args') ?? [];
    if (explicit) {
      return { command: explicit, args, configured: true };
    }
    const installed = installedServer(this.context);
    return installed ? { command: installed, args: [], configured: false } : { command: 'crush-ls', args, configured: false };
  }

  private async start(): Promise<Started> {
    const launch = this.launch();
    try {
      return await this.launchClient(launch);
    } catch (error) {
      if (error instanceof SpawnError && error.notFound && !launch.configured && !this.autoInstallTried) {
        // A first start with nothing configured and no crush-ls on the PATH: install one.
        this.autoInstallTried = true;
        this.output.info('crush-ls is not configured and not on the PATH: installing it.');
        try {
          return await this.launchClient({ command: await installServer(this.context, this.output), args: [], configured: false });
        } catch (installError) {
          throw this.fail(installError instanceof InstallError ? `Crush could not install crush-ls: ${installError.message}` : errorMessage(installError));
        }
      }
      throw this.fail(`Crush could not start crush-ls: ${errorMessage(error)}`, launch);
    }
  }

  private async launchClient(launch: Launch): Promise<Started> {
    const config = vscode.workspace.getConfiguration('crush');
    let process: ServerProcess | undefined;
    // A function, not a command: the process is ours, so a failure can quote its exit code and stderr.
    const serverOptions: ServerOptions = async () => {
      process = await ServerProcess.start(launch.command, [...launch.args, '--stdio']);
      return process.child;
    };
    let started: Started | undefined;
    const clientOptions: LanguageClientOptions = {
      // Open files of the workspace are synced: the agent reads their unsaved text and edits
      // them through workspace/applyEdit (applied by the client, so Ctrl+Z undoes them).
      documentSelector: workspaceDocumentSelector(),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: initializationOptions(config),
      initializationFailedHandler: () => false,
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => {
          if (started) {
            void this.onServerClosed(started);
          }
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new QuietLanguageClient('crush', 'Crush', serverOptions, clientOptions);
    client.registerFeature({
      fillClientCapabilities: (capabilities) => {
        capabilities.experimental = { ...(capabilities.experimental as object | undefined), ...CLIENT_EXPERIMENTAL_CAPABILITIES };
      },
      initialize: () => undefined,
      getState: () => ({ kind: 'static' }),
      clear: () => undefined,
    });
    try {
      await client.start();
    } catch (error) {
      if (error instanceof SpawnError || !process) {
        throw error;
      }
      // It started, then exited (or broke the protocol) before answering initialize.
      const exit = await process.exitWithin(EXIT_GRACE_MS);
      if (!exit) {
        process.child.kill();
      }
      throw new Error(describeFailure(process.commandLine, exit ? describeExit(exit) : `did not answer initialize (${errorMessage(error)})`, process.tail()));
    }
    const folder = vscode.workspace.workspaceFolders?.[0];
    const workspace = folder ? client.code2ProtocolConverter.asUri(folder.uri) : undefined;
    const api = new CrushApi(client, workspace);
    api.setPermissionHandler(askPermission);
    const bridge = new EditorBridge(client);
    api.setEditorHandlers(bridge);
    const chat = new ChatSession(api);
    chat.onError((message) => void vscode.window.showErrorMessage(`Crush: ${message}`));
    started = { client, api, chat, process, bridge };
    this.startedEmitter.fire(started);
    return started;
  }

  /** The server went away while in use: restart it (bounded) and reopen the session it showed. */
  private async onServerClosed(started: Started): Promise<void> {
    if (this.stopping.has(started.client)) {
      return;
    }
    const exit = await started.process?.exitWithin(EXIT_GRACE_MS);
    const what = describeFailure(started.process?.commandLine ?? 'crush-ls', describeExit(exit), started.process?.tail() ?? []);
    const sessionId = started.chat.sessionId;
    await this.stop();
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < RESTART_WINDOW_MS), now];
    this.output.warn(`crush-ls stopped: ${what}`);
    if (this.crashes.length > MAX_RESTARTS) {
      this.fail(`crush-ls stopped ${this.crashes.length} times in ${RESTART_WINDOW_MS / 60_000} minutes; Crush stopped restarting it. The last time: ${what}`, undefined, 'gave-up');
      return;
    }
    const attempt = `${this.crashes.length} of ${MAX_RESTARTS}`;
    this.statusEmitter.fire({ kind: 'reconnecting', message: `crush-ls stopped (${describeExit(exit)}); reconnecting (restart ${attempt})…` });
    try {
      const next = await this.get();
      if (sessionId) {
        await next.chat.open(sessionId); // the transcript, from storage (session/messages)
      }
      this.statusEmitter.fire({ kind: 'reconnected', message: `Reconnected to crush-ls after it ${describeExit(exit)} (restart ${attempt}); the session was reloaded.` });
    } catch (error) {
      if (!(error instanceof ServerStartError)) {
        this.output.error(`reconnecting failed: ${errorMessage(error)}`);
      }
    }
  }

  /** Remembers the failure, tells the view and shows one notification with the ways out. */
  private fail(message: string, launch?: Launch, kind: ServerStatus['kind'] = 'failed'): ServerStartError {
    this.failure = new ServerStartError(message);
    this.output.error(message);
    this.statusEmitter.fire({ kind, message });
    void this.appendDoctorReport(launch);
    void vscode.window.showErrorMessage(message, ...ACTIONS).then((choice) => this.onAction(choice));
    return this.failure;
  }

  private reportInstallFailure(error: unknown): void {
    const message = `Crush could not install crush-ls: ${errorMessage(error)}`;
    this.output.error(message);
    this.statusEmitter.fire({ kind: 'failed', message });
    void vscode.window.showErrorMessage(message, 'Open Settings', 'Show Log').then((choice) =>
      choice === 'Open Settings' ? vscode.commands.executeCommand('workbench.action.openSettings', 'crush.install') : this.onAction(choice),
    );
  }

  /** "Crush: Show Log": the log, with a fresh `crush-ls doctor` report at its end. */
  async showLog(): Promise<void> {
    this.output.show(true);
    await this.appendDoctorReport(this.launch());
  }

  private async onAction(choice: string | undefined): Promise<void> {
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'crush.server.command');
    } else if (choice === 'Show Log') {
      this.output.show(true); // the report of the failed command is already there
    } else if (choice === 'Install crush-ls') {
      await this.install();
    }
  }

  /** `crush-ls doctor` of the failing command, for "Show Log" (when the command runs at all). */
  private async appendDoctorReport(launch: Launch | undefined): Promise<void> {
    if (!launch) {
      return;
    }
    const config = vscode.workspace.getConfiguration('crush');
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    // The options the server gets: the model of the settings is the one to check.
    const options = JSON.stringify(initializationOptions(config));
    const args = [...launch.args, 'doctor', ...(folder ? ['--folder', folder] : []), '--init-options', options];
    const ran = await run(launch.command, args, this.output);
    this.output.info(`crush-ls doctor exited with code ${ran.code}`);
  }

  private async stop(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    if (!current) {
      return;
    }
    const started = await current.catch(() => undefined);
    if (started) {
      this.stopping.add(started.client);
      started.chat.dispose();
      started.api.dispose();
      started.bridge.dispose();
      await started.client.stop(EXIT_GRACE_MS).catch((e) => this.output.appendLine(`stop: ${String(e)}`));
      if (started.process && !(await started.process.exitWithin(EXIT_GRACE_MS))) {
        started.process.child.kill();
      }
    }
  }

  private async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (this.applyingInstall) {
      return; // install() restarts once the settings are written
    }
    if (e.affectsConfiguration('crush.server') || e.affectsConfiguration('crush.permissions') || e.affectsConfiguration('crush.followAgent')) {
      if (this.current || this.failure) {
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

function initializationOptions(config: vscode.WorkspaceConfiguration): ReturnType<typeof buildInitializationOptions> {
  return buildInitializationOptions(config.get('model'), config.get('permissions.mode'), config.get('followAgent'));
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
