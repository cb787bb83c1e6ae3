// The server-to-client requests the extension answers about documents
// (`agent/saveDocument`, `agent/diagnostics`) and the helpers the views use,
// over a real vscode-jsonrpc connection pair: the "server" end here plays
// crush-ls' side of the wire exactly as docs/protocol.md words it.

import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { MessageConnection, StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import { CLIENT_EXPERIMENTAL_CAPABILITIES, CrushApi, DiagnosticsResult, buildInitializationOptions, diffCounts } from '../protocol';
import { contextLabel } from '../session';

function connectionPair(): { server: MessageConnection; client: MessageConnection } {
  const toClient = new PassThrough();
  const toServer = new PassThrough();
  const server = createMessageConnection(new StreamMessageReader(toServer), new StreamMessageWriter(toClient));
  const client = createMessageConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toServer));
  server.listen();
  client.listen();
  return { server, client };
}

const ERROR = { range: { start: { line: 1, character: 0 }, end: { line: 1, character: 3 } }, severity: 1 as const, message: 'Expected comma' };

describe('agent/saveDocument and agent/diagnostics', () => {
  const { server, client } = connectionPair();
  const api = new CrushApi(client, 'file:///ws');
  after(() => {
    api.dispose();
    server.dispose();
    client.dispose();
  });

  test('the client declares both capabilities', () => {
    assert.deepEqual(CLIENT_EXPERIMENTAL_CAPABILITIES.crush, { permissions: true, saveDocument: true, diagnostics: true });
  });

  test('without handlers: nothing saved, no diagnostics', async () => {
    assert.deepEqual(await server.sendRequest('agent/saveDocument', { uri: 'file:///ws/a.ts' }), { saved: false });
    assert.deepEqual(await server.sendRequest('agent/diagnostics', {}), { items: [] });
  });

  test('the handlers answer, with the uris asked for (or undefined: the whole workspace)', async () => {
    const saved: string[] = [];
    const asked: Array<string[] | undefined> = [];
    api.setEditorHandlers({
      saveDocument: async (uri) => {
        saved.push(uri);
        return uri.endsWith('a.ts');
      },
      diagnostics: async (uris) => {
        asked.push(uris);
        return [{ uri: 'file:///ws/b.json', diagnostics: [ERROR] }];
      },
    });
    assert.deepEqual(await server.sendRequest('agent/saveDocument', { uri: 'file:///ws/a.ts' }), { saved: true });
    assert.deepEqual(await server.sendRequest('agent/saveDocument', { uri: 'file:///ws/other.ts' }), { saved: false });
    assert.deepEqual(await server.sendRequest('agent/saveDocument', {}), { saved: false }, 'no uri: not saved, still answered');
    const all = await server.sendRequest<DiagnosticsResult>('agent/diagnostics', {});
    const one = await server.sendRequest<DiagnosticsResult>('agent/diagnostics', { uris: ['file:///ws/b.json', 7] });
    assert.deepEqual(all, { items: [{ uri: 'file:///ws/b.json', diagnostics: [ERROR] }] });
    assert.deepEqual(one, all);
    assert.deepEqual(saved, ['file:///ws/a.ts', 'file:///ws/other.ts']);
    assert.deepEqual(asked, [undefined, ['file:///ws/b.json']]);
  });

  test('a save that throws answers saved: false', async () => {
    api.setEditorHandlers({
      saveDocument: async () => {
        throw new Error('disk full');
      },
      diagnostics: async () => [],
    });
    assert.deepEqual(await server.sendRequest('agent/saveDocument', { uri: 'file:///ws/a.ts' }), { saved: false });
  });
});

describe('helpers of the views', () => {
  test('followAgent goes into initializationOptions only when on', () => {
    assert.deepEqual(buildInitializationOptions(undefined, 'ask', true), { followAgent: true, permissions: { mode: 'ask' } });
    assert.deepEqual(buildInitializationOptions(undefined, 'ask', false), { permissions: { mode: 'ask' } });
  });

  test('chip labels: the file name, its lines, diagnostics', () => {
    const range = (a: number, b: number, endChar = 4) => ({ start: { line: a, character: 0 }, end: { line: b, character: endChar } });
    assert.equal(contextLabel({ uri: 'file:///ws/src/my%20file.ts', kind: 'file' }), 'my file.ts');
    assert.equal(contextLabel({ uri: 'file:///ws/a.ts', kind: 'selection', range: range(2, 4) }), 'a.ts:3-5');
    assert.equal(contextLabel({ uri: 'file:///ws/a.ts', kind: 'selection', range: range(2, 4, 0) }), 'a.ts:3-4', 'ending at column 0');
    assert.equal(contextLabel({ uri: 'file:///ws/a.ts', kind: 'selection', range: range(6, 6) }), 'a.ts:7');
    assert.equal(contextLabel({ uri: 'file:///ws/a.ts', kind: 'diagnostics' }), 'a.ts (diagnostics)');
  });

  test('+/- counts of a unified diff leave out the headers', () => {
    const diff = '--- a/x\n+++ b/x\n@@ -1,2 +1,3 @@\n a\n-b\n+c\n+d\n';
    assert.deepEqual(diffCounts(diff), { additions: 2, deletions: 1 });
  });
});
