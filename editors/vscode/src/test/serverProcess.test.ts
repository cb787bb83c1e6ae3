// serverProcess.ts: what a failed start is explained with (command line, exit,
// stderr tail), against real processes. Needs only node and a python3.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ServerProcess, SpawnError, describeExit, describeFailure } from '../serverProcess';

const PYTHON = process.env.CRUSH_LS_COMMAND || 'python3';

describe('the server process', () => {
  test('an exit before initialize is told with its code and the last stderr lines', async () => {
    const script = 'import sys\nfor i in range(5): print(f"line {i}", file=sys.stderr)\nsys.exit(7)';
    const server = await ServerProcess.start(PYTHON, ['-c', script, '--stdio']);
    const exit = await server.exited;
    assert.deepEqual(exit, { code: 7, signal: null });
    assert.deepEqual(server.tail(), ['line 2', 'line 3', 'line 4']);
    assert.equal(
      describeFailure(server.commandLine, describeExit(exit), server.tail()),
      `\`${PYTHON} -c 'import sys\nfor i in range(5): print(f"line {i}", file=sys.stderr)\nsys.exit(7)' --stdio\` exited with code 7. ` +
        'Last lines of its stderr: line 2 | line 3 | line 4',
    );
  });

  test('a killed server is told by its signal; silence by saying so', async () => {
    const server = await ServerProcess.start(PYTHON, ['-c', 'import time; time.sleep(60)']);
    server.child.kill('SIGKILL');
    const exit = await server.exited;
    assert.equal(describeFailure(server.commandLine, describeExit(exit), server.tail()),
      `\`${PYTHON} -c 'import time; time.sleep(60)'\` was killed by SIGKILL. It wrote nothing to stderr.`);
  });

  test('a command that does not exist is a SpawnError that says so', async () => {
    await assert.rejects(ServerProcess.start('/nonexistent/crush-ls', ['--stdio']), (error: unknown) => {
      assert.ok(error instanceof SpawnError && error.notFound);
      assert.equal(error.message, '`/nonexistent/crush-ls --stdio` was not found (no such command).');
      return true;
    });
  });
});
