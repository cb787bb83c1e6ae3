// The extension's protocol layer (protocol.ts, session.ts) against the real
// crush-ls over vscode-jsonrpc, with the scripted model. The server command
// comes from CRUSH_LS_COMMAND / CRUSH_LS_ARGS (a JSON list), default `crush-ls`.

import assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { CancellationTokenSource, MessageConnection, StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import { CLIENT_EXPERIMENTAL_CAPABILITIES, CrushApi, CrushError, Decision, McpServer, Notification, PermissionRequest, buildInitializationOptions, mcpLine, mcpSummary } from '../protocol';
import { ChatChange, ChatSession, streamRun } from '../session';
import { SCRIPT, SLOW_TEXT } from './script';

interface Server {
  process: ChildProcessWithoutNullStreams;
  connection: MessageConnection;
  api: CrushApi;
  folder: string;
  stderr: string[];
}

async function startServer(extraOptions: object = {}): Promise<Server> {
  const command = process.env.CRUSH_LS_COMMAND || 'crush-ls';
  const args: string[] = process.env.CRUSH_LS_ARGS ? JSON.parse(process.env.CRUSH_LS_ARGS) : [];
  const folder = mkdtempSync(join(tmpdir(), 'crush-vscode-'));
  const child = spawn(command, args, { cwd: folder, stdio: 'pipe' });
  const stderr: string[] = [];
  child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  const workspace = pathToFileURL(folder).toString();
  const api = new CrushApi(connection, workspace);
  connection.listen();
  const init = await connection.sendRequest<{ capabilities: { experimental?: { crush?: { version: number } } } }>('initialize', {
    processId: process.pid,
    rootUri: workspace,
    workspaceFolders: [{ uri: workspace, name: 'ws' }],
    capabilities: { experimental: CLIENT_EXPERIMENTAL_CAPABILITIES },
    initializationOptions: { ...buildInitializationOptions({ provider: 'scripted', script: SCRIPT }, 'ask'), streamIntervalMs: 0, ...extraOptions },
  });
  assert.equal(init.capabilities.experimental?.crush?.version, 1);
  await connection.sendNotification('initialized', {});
  return { process: child, connection, api, folder, stderr };
}

async function stopServer(server: Server): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
  await server.connection.sendRequest('shutdown');
  await server.connection.sendNotification('exit');
  const code = await exited;
  server.connection.dispose();
  rmSync(server.folder, { recursive: true, force: true });
  return code;
}

/** Resolves with the first change of `chat` that satisfies `predicate`. */
function changeWhere(chat: ChatSession, predicate: (c: ChatChange) => boolean): Promise<ChatChange> {
  return new Promise((resolve) => {
    const subscription = chat.onDidChange((c) => {
      if (predicate(c)) {
        subscription.dispose();
        resolve(c);
      }
    });
  });
}

function runCompleteOf(api: CrushApi, runId: string) {
  return api.waitForRun(runId).done;
}

describe('crush-ls protocol layer', () => {
  let server: Server;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    const code = await stopServer(server);
    assert.equal(code, 0, `crush-ls exited ${code}; stderr:\n${server.stderr.join('')}`);
  });

  test('a prompt streams into the chat session and completes', async () => {
    const chat = new ChatSession(server.api);
    const deltas: string[] = [];
    server.api.onNotification((n) => n.type === 'text_delta' && n.sessionId === chat.sessionId && deltas.push(n.text));
    const idle = changeWhere(chat, (c) => c.status.sessionId !== undefined && !c.status.busy && c.entries.some((e) => e.role === 'assistant'));
    const accepted = await chat.send('hello there');
    assert.equal(accepted.accepted, true);
    assert.equal(accepted.queued, false);
    await idle;
    const entries = chat.snapshot().entries;
    assert.deepEqual(entries.map((e) => e.role), ['user', 'assistant']);
    assert.equal(entries[0].text, 'hello there');
    assert.equal(entries[1].text, 'Hello from the script');
    assert.equal(entries[1].streaming, false);
    assert.equal(entries[1].finishReason, 'end_turn');
    assert.ok(deltas.length > 1, `expected several deltas, got ${JSON.stringify(deltas)}`);
    assert.equal(deltas.join(''), 'Hello from the script');
    chat.dispose();
  });

  test('opening a session rebuilds the same chat from session/messages', async () => {
    const chat = new ChatSession(server.api);
    const sessionId = await chat.ensureSession();
    const { runId } = await chat.send('second session');
    await runCompleteOf(server.api, runId);
    const reopened = new ChatSession(server.api);
    await reopened.open(sessionId);
    const texts = (c: ChatSession) => c.snapshot().entries.map((e) => [e.role, e.text]);
    assert.deepEqual(texts(reopened), [['user', 'second session'], ['assistant', 'Hello from the script']]);
    assert.deepEqual(texts(reopened), texts(chat));
    const listed = await reopened.listSessions();
    assert.ok(listed.some((s) => s.id === sessionId));
    chat.dispose();
    reopened.dispose();
  });

  test('a second prompt is queued and cancel ends both runs', async () => {
    const chat = new ChatSession(server.api);
    await chat.ensureSession();
    const first = await chat.send('slow one');
    const completions = [runCompleteOf(server.api, first.runId)];
    const queuedShown = changeWhere(chat, (c) => c.status.queued.length === 1);
    const second = await chat.send('slow two');
    completions.push(runCompleteOf(server.api, second.runId));
    assert.equal(second.queued, true);
    assert.equal(second.position, 1);
    const change = await queuedShown;
    assert.equal(change.status.queued[0].prompt, 'slow two');
    assert.equal(change.status.busy, true);
    assert.equal(await chat.cancel(), 2);
    const finished = await Promise.all(completions);
    assert.deepEqual(finished.map((r) => r.finishReason), ['canceled', 'canceled']);
    assert.equal(chat.status().busy, false);
    assert.deepEqual(chat.status().queued, []);
    chat.dispose();
  });

  test('streamRun cancels its run when the token is cancelled', async () => {
    const sessionId = (await server.api.createSession('cancel me')).id;
    const source = new CancellationTokenSource();
    let text = '';
    const run = streamRun(server.api, { sessionId, prompt: 'slow please' }, {
      onText: (t) => {
        text += t;
        source.cancel(); // cancel as soon as the reply is visibly streaming
      },
    }, source.token);
    const done = await run;
    assert.equal(done.finishReason, 'canceled');
    assert.ok(text.length > 0 && text.length < SLOW_TEXT.length, `streamed ${text.length} chars`);
    const status = await server.api.status(sessionId);
    assert.equal(status.busy, false);
  });

  test('streamRun sends text attachments, which crush-ls inlines into the user message', async () => {
    const sessionId = (await server.api.createSession()).id;
    const done = await streamRun(server.api, {
      sessionId,
      prompt: 'see the notes',
      attachments: [{ path: 'notes.md', text: 'ATTACHED-NOTE' }],
    }, {});
    assert.equal(done.finishReason, 'end_turn');
    const [user] = await server.api.messages(sessionId);
    const text = user.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
    assert.match(text, /see the notes/);
    assert.match(text, /ATTACHED-NOTE/);
  });

  test('permission requests reach the handler; a denial shows on the tool card', async () => {
    const requests: PermissionRequest[] = [];
    server.api.setPermissionHandler(async (request) => {
      requests.push(request);
      return 'deny';
    });
    const chat = new ChatSession(server.api);
    const { runId } = await chat.send('read the hostname');
    const done = await runCompleteOf(server.api, runId);
    assert.equal(done.finishReason, 'end_turn');
    assert.equal(requests.length, 1);
    assert.equal(requests[0].permission.tool, 'view');
    assert.equal(requests[0].permission.path, '/etc/hostname');
    assert.equal(requests[0].runId, runId);
    const card = chat.snapshot().entries.flatMap((e) => e.tools).find((c) => c.name === 'view');
    assert.ok(card, 'a tool card for the view call');
    assert.equal(card.decision, 'deny');
    assert.equal(card.isError, true);
    chat.dispose();
  });

  test('an allowed write shows its diff on the tool card', async () => {
    const decisions: Decision[] = ['allow'];
    server.api.setPermissionHandler(async () => decisions.shift() ?? 'deny');
    const chat = new ChatSession(server.api);
    const { runId } = await chat.send('write a file');
    const done = await runCompleteOf(server.api, runId);
    assert.equal(done.finishReason, 'end_turn');
    assert.equal(done.text, 'Wrote a.txt.');
    assert.equal(readFileSync(join(server.folder, 'a.txt'), 'utf8'), 'x\n');
    const card = chat.snapshot().entries.flatMap((e) => e.tools).find((c) => c.name === 'write');
    assert.ok(card, 'a tool card for the write call');
    assert.equal(card.status, 'completed');
    assert.equal(card.decision, 'allow');
    assert.match(card.diff ?? '', /^\+x$/m);
  });

  test('run errors are reported to the error listeners', async () => {
    const chat = new ChatSession(server.api);
    const errors: string[] = [];
    chat.onError((m) => errors.push(m));
    const { runId } = await chat.send('fail now');
    const done = await runCompleteOf(server.api, runId);
    assert.equal(done.finishReason, 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0], /scripted failure/);
    assert.ok(chat.snapshot().entries.some((e) => e.role === 'error' && /scripted failure/.test(e.text)));
    chat.dispose();
  });

  test('context items go with the prompt, are stored with it and come back as chips', async () => {
    writeFileSync(join(server.folder, 'ctx.txt'), 'one\ntwo\n');
    const uri = pathToFileURL(join(server.folder, 'ctx.txt')).toString();
    const chat = new ChatSession(server.api);
    const { runId } = await chat.send('context test', 'queue', [
      { uri, kind: 'file' },
      { uri, kind: 'selection', range: { start: { line: 1, character: 0 }, end: { line: 1, character: 3 } }, text: 'two' },
    ]);
    await runCompleteOf(server.api, runId);
    const [user] = await server.api.messages(chat.sessionId!);
    const parts = user.parts.flatMap((p) => (p.type === 'context' ? [[p.kind, p.uri, p.text]] : []));
    assert.deepEqual(parts, [['file', uri, 'one\ntwo\n'], ['selection', uri, 'two']]);
    assert.deepEqual(chat.snapshot().entries[0].context.map((c) => c.label), ['ctx.txt', 'ctx.txt:2']);
    chat.dispose();
  });

  test('the diagnostics tool asks the editor (agent/diagnostics); the model reads its answer', async () => {
    writeFileSync(join(server.folder, 'broken.json'), '{"a": 1 "b": 2}\n');
    const uri = pathToFileURL(join(server.folder, 'broken.json')).toString();
    const asked: Array<string[] | undefined> = [];
    server.api.setEditorHandlers({
      saveDocument: async () => false,
      diagnostics: async (uris) => {
        asked.push(uris);
        const range = { start: { line: 0, character: 8 }, end: { line: 0, character: 11 } };
        return [{ uri, diagnostics: [{ range, severity: 1, source: 'json', message: 'Expected comma' }] }];
      },
    });
    const chat = new ChatSession(server.api);
    const { runId } = await chat.send('check the problems');
    await runCompleteOf(server.api, runId);
    const card = chat.snapshot().entries.flatMap((e) => e.tools).find((c) => c.name === 'diagnostics');
    assert.equal(card?.status, 'completed', JSON.stringify(card));
    assert.match(card?.content ?? '', /broken\.json:1:9[\s\S]*Expected comma/);
    assert.deepEqual(asked, [[uri]]);
    server.api.setEditorHandlers(undefined);
    chat.dispose();
  });

  test('the changed files of a run are listed (agent/changes); rejecting one hunk of two reverts just it', async () => {
    const file = join(server.folder, 'hunks.txt');
    const lines = Array.from({ length: 12 }, (_, i) => `line ${i + 1}\n`);
    writeFileSync(file, lines.join(''));
    server.api.setPermissionHandler(async () => 'allow');
    const chat = new ChatSession(server.api);
    const listed = changeWhere(chat, (c) => (c.status.changes?.files.length ?? 0) > 0);
    const { runId } = await chat.send('change two places');
    await runCompleteOf(server.api, runId);
    const { status } = await listed;
    assert.equal(status.changes?.runId, runId);
    assert.deepEqual(status.changes?.files, [{ path: 'hunks.txt', status: 'modified', additions: 2, removals: 2, hunks: 2, accepted: 0, rejected: 0 }]);
    const change = chat.changeOf('hunks.txt');
    assert.equal(change?.before, lines.join(''));
    assert.deepEqual(change?.hunks.map((h) => h.status), ['pending', 'pending']);
    const reviewed = changeWhere(chat, (c) => c.status.changes?.files[0]?.rejected === 1);
    await chat.review('hunks.txt', 'reject', [change!.hunks[0].id]);
    await reviewed; // after change_reviewed, relisted
    assert.equal(readFileSync(file, 'utf8'), lines.map((l) => (l === 'line 11\n' ? 'LINE 11\n' : l)).join(''));
    await assert.rejects(chat.review('hunks.txt', 'reject', [change!.hunks[0].id]), (e: CrushError) => e.reason === 'hunk_not_applicable');
    // Accepting the file's pending hunks (the other one) marks it and leaves the file alone.
    const accepted = changeWhere(chat, (c) => c.status.changes?.files[0]?.accepted === 1);
    await chat.review('hunks.txt', 'accept');
    const after = (await accepted).status.changes?.files[0];
    assert.deepEqual([after?.accepted, after?.rejected], [1, 1]);
    assert.match(readFileSync(file, 'utf8'), /^line 2$[\s\S]*^LINE 11$/m);
    chat.dispose();
  });

  test('rewind restores the file and hides the messages; unrewind brings both back', async () => {
    const file = join(server.folder, 'rewind.txt');
    writeFileSync(file, 'original\n');
    server.api.setPermissionHandler(async () => 'allow');
    const chat = new ChatSession(server.api);
    const { runId } = await chat.send('replace the rewind file');
    await runCompleteOf(server.api, runId);
    assert.equal(readFileSync(file, 'utf8'), 'changed by the agent\n');
    const user = chat.snapshot().entries.find((e) => e.role === 'user')!;
    const transcript = chat.snapshot().entries.map((e) => [e.role, e.text]);
    assert.deepEqual(transcript.at(-1), ['assistant', 'Replaced it.']);
    const since = await chat.filesChangedSince(user.id);
    assert.deepEqual(since.map((f) => [f.path, f.status]), [['rewind.txt', 'modified']]);
    const rewound = await chat.rewind(user.id);
    assert.deepEqual(rewound.restored, [{ path: 'rewind.txt', action: 'restored' }]);
    assert.deepEqual(rewound.conflicts, []);
    assert.equal(readFileSync(file, 'utf8'), 'original\n');
    assert.deepEqual(chat.snapshot().entries, [], 'the messages are hidden');
    assert.equal(chat.status().canUnrewind, true);
    await chat.unrewind();
    assert.equal(readFileSync(file, 'utf8'), 'changed by the agent\n');
    assert.deepEqual(chat.snapshot().entries.map((e) => [e.role, e.text]), transcript);
    chat.dispose();
  });

  test('take back (agent/popQueue) returns the last queued prompt, which never runs', async () => {
    const chat = new ChatSession(server.api);
    const first = await chat.send('slow take back one');
    const second = await chat.send('slow take back two');
    assert.equal(second.queued, true);
    const secondDone = runCompleteOf(server.api, second.runId);
    assert.equal(await chat.takeBack(), 'slow take back two');
    assert.equal((await secondDone).finishReason, 'canceled');
    assert.deepEqual(chat.status().queued, []);
    assert.equal(await chat.takeBack(), undefined, 'nothing queued any more');
    const firstDone = runCompleteOf(server.api, first.runId);
    await chat.cancel();
    await firstDone;
    const users = (await server.api.messages(chat.sessionId!)).filter((m) => m.role === 'user');
    assert.deepEqual(users.map((m) => m.parts.find((p) => p.type === 'text')), [{ type: 'text', text: 'slow take back one' }]);
    chat.dispose();
  });

  test('request errors carry the stable data.reason', async () => {
    const sessionId = (await server.api.createSession()).id;
    await assert.rejects(server.api.sendMessage({ sessionId, prompt: '   ' }), (e: CrushError) => e.reason === 'empty_prompt');
    await assert.rejects(server.api.sendMessage({ sessionId: 'no-such-session', prompt: 'hi' }), (e: CrushError) => e.reason === 'session_not_found');
    await assert.rejects(server.api.messages('no-such-session'), (e: CrushError) => e.reason === 'session_not_found' && e.code === -32014);
  });
});

describe('MCP servers', () => {
  // The server is started by a Python interpreter (`-m crush_ls`): that one runs the time server too.
  const python = process.env.CRUSH_LS_ARGS?.includes('crush_ls') ? process.env.CRUSH_LS_COMMAND : undefined;

  test('agent/mcpServers and mcp_updated give each server and its state', { skip: !python && 'needs CRUSH_LS_COMMAND=python' }, async () => {
    const server = await startServer({
      mcp: { time: { command: python, args: ['-m', 'mcp_server_time'] }, broken: { type: 'http' } },
    });
    try {
      const connected = new Promise<McpServer[]>((resolve) => {
        const subscription = server.api.onNotification((n: Notification) => {
          if (n.type === 'mcp_updated' && n.servers.some((s) => s.name === 'time' && s.state === 'connected')) {
            subscription.dispose();
            resolve(n.servers);
          }
        });
      });
      const [broken] = await server.api.mcpServers();
      assert.equal(broken.state, 'failed');
      assert.match(mcpLine(broken), /^broken \(http\): failed: invalid configuration: an http server needs a url$/);
      const servers = await connected;
      assert.equal(mcpSummary(servers), 'MCP 1/2, 1 failed');
      assert.equal(mcpLine(servers[1]), 'time (stdio): connected, 2 tools');
    } finally {
      await stopServer(server);
    }
  });
});
