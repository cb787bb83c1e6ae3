// The workspace's MCP servers in the status bar ("MCP 2/3, 1 failed"), and the
// `crush.mcpServers` command that lists them with their state and errors.

import * as vscode from 'vscode';
import { CrushConnection, Started, errorMessage } from './connection';
import { McpServer, mcpLine, mcpSummary } from './protocol';

export class McpStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('crush.mcp', vscode.StatusBarAlignment.Left, 10);
  private readonly disposables: vscode.Disposable[] = [this.item];
  private servers: McpServer[] = [];

  constructor(private readonly connection: CrushConnection) {
    this.item.name = 'Crush MCP servers';
    this.item.command = 'crush.mcpServers';
    this.disposables.push(connection.onDidStart((started) => this.follow(started)));
  }

  private follow(started: Started): void {
    this.disposables.push(started.api.onNotification((n) => {
      if (n.type === 'mcp_updated') {
        this.show(n.servers);
      }
    }));
    started.api.mcpServers().then((servers) => this.show(servers), () => undefined);
  }

  private show(servers: McpServer[]): void {
    this.servers = servers;
    const summary = mcpSummary(servers);
    if (!summary) {
      this.item.hide();
      return;
    }
    const failed = servers.some((s) => s.state === 'failed');
    this.item.text = `$(${failed ? 'warning' : 'plug'}) ${summary}`;
    this.item.tooltip = servers.map(mcpLine).join('\n');
    this.item.backgroundColor = failed ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  /** `crush.mcpServers`: a quick pick of the servers (asked anew from the server). */
  async pick(): Promise<McpServer[]> {
    try {
      this.show(await (await this.connection.get()).api.mcpServers());
    } catch (error) {
      void vscode.window.showErrorMessage(`Crush: agent/mcpServers failed: ${errorMessage(error)}`);
      return this.servers;
    }
    if (this.servers.length === 0) {
      void vscode.window.showInformationMessage('Crush: no MCP servers are configured (the "mcp" map of crush.json).');
      return this.servers;
    }
    void vscode.window.showQuickPick(
      this.servers.map((s) => ({ label: s.name, description: `${s.type}, ${s.state}`, detail: mcpLine(s) })),
      { title: 'Crush: MCP servers' },
    );
    return this.servers;
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }
}
