// The `@crush` participant in VS Code's chat panel: one crush-ls session per
// chat conversation, streamed as markdown, cancelled with the panel's token.

import * as vscode from 'vscode';
import { CrushConnection, errorMessage } from './connection';
import { contextOfReferences } from './editorContext';
import { SendMessageParams, ToolCall } from './protocol';
import { streamRun } from './session';

interface CrushResultMetadata {
  sessionId?: string;
}

export function registerParticipant(connection: CrushConnection): vscode.Disposable {
  const participant = vscode.chat.createChatParticipant('crush.agent', (request, context, stream, token) =>
    answer(connection, request, context, stream, token),
  );
  participant.iconPath = new vscode.ThemeIcon('comment-discussion');
  return participant;
}

async function answer(
  connection: CrushConnection,
  request: vscode.ChatRequest,
  context: vscode.ChatContext,
  stream: vscode.ChatResponseStream,
  token: vscode.CancellationToken,
): Promise<vscode.ChatResult> {
  let sessionId: string | undefined;
  try {
    const { api } = await connection.get();
    sessionId = previousSessionId(context) ?? (await api.createSession(request.prompt.slice(0, 50))).id;
    stream.progress('Crush is working…');
    // VS Code's chips (the current file unless the person removed it, #file, #selection) go as context.
    const editorContext = await contextOfReferences(request.references);
    connection.output.debug(`@crush: context ${editorContext.map((c) => `${c.kind} ${c.uri}`).join(', ') || '(none)'}; references ${request.references.map((r) => r.id).join(', ') || '(none)'}`);
    const run = await streamRun(
      api,
      { sessionId, prompt: request.prompt, attachments: attachmentsOf(request.references), context: editorContext },
      {
        onText: (text) => stream.markdown(text),
        onToolCall: (call) => reportToolCall(stream, call),
        onToolResult: (name, _content, isError, metadata) => {
          if (typeof metadata?.diff === 'string') {
            stream.markdown(`\n\n\`${name}\` ${metadata.path ?? ''}\n\n\`\`\`diff\n${metadata.diff}\n\`\`\`\n\n`);
          } else if (isError) {
            stream.markdown(`\n\n_\`${name}\` failed._\n\n`);
          }
        },
        onError: (message, code, willRetry) => willRetry && stream.progress(`${message} (${code}); retrying…`),
      },
      token,
    );
    const metadata: CrushResultMetadata = { sessionId };
    if (run.finishReason === 'error') {
      return { errorDetails: { message: run.error || 'The crush-ls run failed.' }, metadata };
    }
    if (run.finishReason === 'canceled') {
      stream.markdown('\n\n_Canceled._');
    }
    return { metadata };
  } catch (error) {
    return { errorDetails: { message: `Crush: ${errorMessage(error)}` }, metadata: { sessionId } };
  }
}

/** The session of this conversation, remembered in the metadata of our last answer. */
function previousSessionId(context: vscode.ChatContext): string | undefined {
  for (let i = context.history.length - 1; i >= 0; i--) {
    const turn = context.history[i];
    if (turn instanceof vscode.ChatResponseTurn && turn.participant === 'crush.agent') {
      const id = (turn.result.metadata as CrushResultMetadata | undefined)?.sessionId;
      if (id) {
        return id;
      }
    }
  }
  return undefined;
}

function reportToolCall(stream: vscode.ChatResponseStream, call: ToolCall): void {
  if (call.status === 'running') {
    stream.progress(`Running ${call.name}…`);
  } else if (call.status === 'awaiting_permission') {
    stream.progress(`Waiting for permission to run ${call.name}…`);
  }
}

type Attachment = NonNullable<SendMessageParams['attachments']>[number];

/** References that are text, not files (those go as context), as text attachments. */
function attachmentsOf(references: readonly vscode.ChatPromptReference[]): Attachment[] {
  return references.flatMap((r) => (typeof r.value === 'string' ? [{ path: r.id, text: r.value }] : []));
}
