// TEST ONLY: a fake language model so that VS Code routes chat requests to
// the @crush participant (it refuses to without a model), and a command that
// opens the chat panel with that model selected and "@crush " typed.
const vscode = require('vscode');

const MODEL = {
  id: 'crush-fake', name: 'Crush Fake', family: 'crush-fake', version: '1',
  maxInputTokens: 100000, maxOutputTokens: 4096, capabilities: {},
};

function activate(context) {
  context.subscriptions.push(
    vscode.lm.registerLanguageModelChatProvider('crushfake', {
      provideLanguageModelChatInformation: () => [MODEL],
      async provideLanguageModelChatResponse(_model, _messages, _options, progress) {
        progress.report(new vscode.LanguageModelTextPart('FAKE-MODEL-REPLY'));
      },
      provideTokenCount: async (_model, text) => String(typeof text === 'string' ? text : '').length,
    }),
    vscode.commands.registerCommand('crushTest.openChat', () =>
      // modelSelector is a workbench-internal argument of this command (pinned code-server version).
      vscode.commands.executeCommand('workbench.action.chat.open', {
        query: '@crush ', isPartialQuery: true, modelSelector: { vendor: 'crushfake' },
      })),
    // Stands in for a keybinding or another extension calling crush.send with a prompt.
    vscode.commands.registerCommand('crushTest.sendArgument', () =>
      vscode.commands.executeCommand('crush.send', 'prompt given as an argument')),
  );
}

module.exports = { activate };
