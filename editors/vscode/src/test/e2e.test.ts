// End to end in a real VS Code: code-server (Node 24) with the packaged VSIX,
// driven by playwright-core through Debian's chromium, talking to the real
// crush-ls with the scripted model. .ci/vscode.sh installs the toolchain and
// sets the environment; without it these tests skip (unless
// CRUSH_E2E_REQUIRED=1, as in CI, where they fail instead).

import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { SCRIPT } from './script';

const env = process.env;
const REQUIRED = ['CODE_SERVER_NODE', 'CODE_SERVER_ENTRY', 'CRUSH_VSIX', 'CRUSH_FAKE_LM_DIR', 'CRUSH_E2E_WORK', 'CRUSH_WHEEL'];
const missing = REQUIRED.filter((name) => !env[name]);
if (missing.length && env.CRUSH_E2E_REQUIRED === '1') {
  throw new Error(`E2E environment incomplete (${missing.join(', ')}): run .ci/vscode.sh`);
}
const skip = missing.length ? `needs ${missing.join(', ')} (run .ci/vscode.sh)` : false;

let PORT = 0;
let URL_BASE = '';
const TIMEOUT = 30_000;
const INSTALL_TIMEOUT = 400_000; // a fresh venv and pip on a busy 2-core machine
/** A server command that exists but fails at once: the first start must explain it. */
const FAILING_ARGS = ['-c', 'import sys; sys.stderr.write("crush-ls: fake start failure\\n"); sys.exit(3)'];

const work = env.CRUSH_E2E_WORK ?? '';
const dirs = {
  userData: join(work, 'ud'),
  extensions: join(work, 'ext'),
  workspace: join(work, 'ws'),
  screenshots: env.SCREENSHOTS_DIR || join(work, 'shots'),
};

function codeServerArgs(...extra: string[]): string[] {
  return [env.CODE_SERVER_ENTRY!, '--config', join(work, 'cs-config.yaml'), '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, ...extra];
}

/** Isolates code-server's and chromium's side files (config, logs, sockets) under the work dir. */
function isolatedEnv(): NodeJS.ProcessEnv {
  const xdg = join(work, 'xdg');
  return { ...env, XDG_CONFIG_HOME: join(xdg, 'config'), XDG_DATA_HOME: join(xdg, 'data'), XDG_CACHE_HOME: join(xdg, 'cache'), TMPDIR: join(work, 'tmp') };
}

function prepareProfile(): void {
  rmSync(dirs.userData, { recursive: true, force: true });
  rmSync(dirs.extensions, { recursive: true, force: true });
  rmSync(dirs.workspace, { recursive: true, force: true });
  for (const dir of [join(dirs.userData, 'User'), dirs.extensions, dirs.workspace, dirs.screenshots, join(work, 'tmp')]) {
    mkdirSync(dir, { recursive: true });
  }
  writeFileSync(join(work, 'cs-config.yaml'), `bind-addr: 127.0.0.1:${PORT}\nauth: none\ncert: false\n`);
  const settings = {
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'workbench.startupEditor': 'none',
    'update.mode': 'none',
    // Starts broken; "Install crush-ls" then installs CRUSH_WHEEL and points these at it.
    'crush.server.command': env.CRUSH_LS_COMMAND || 'python3',
    'crush.server.args': FAILING_ARGS,
    'crush.install.package': env.CRUSH_WHEEL,
    'crush.model': { provider: 'scripted', script: SCRIPT },
    'crush.permissions.mode': 'ask',
  };
  writeFileSync(join(dirs.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  // The test-only model extension as a folder, then the product as its VSIX (as a user installs it).
  cpSync(env.CRUSH_FAKE_LM_DIR!, join(dirs.extensions, 'crush-ls-test.crush-test-fake-lm-0.0.1'), { recursive: true });
  execFileSync(env.CODE_SERVER_NODE!, codeServerArgs('--install-extension', env.CRUSH_VSIX!, '--force'), { env: isolatedEnv(), stdio: 'pipe' });
  const listed = execFileSync(env.CODE_SERVER_NODE!, codeServerArgs('--list-extensions'), { env: isolatedEnv() }).toString();
  assert.match(listed, /crush-ls\.crush-ls-vscode/);
  assert.match(listed, /crush-ls-test\.crush-test-fake-lm/);
}

/** code-server in its own process group, so that stopping it ends its extension host and crush-ls too. */
function startCodeServer(): ChildProcess {
  const log = openSync(join(work, 'code-server.log'), 'w');
  return spawn(
    env.CODE_SERVER_NODE!,
    codeServerArgs('--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', dirs.workspace),
    { env: isolatedEnv(), detached: true, stdio: ['ignore', log, log] },
  );
}

/** CODE_SERVER_PORT, or a port that is free right now (CI may run other servers). */
async function choosePort(): Promise<number> {
  if (env.CODE_SERVER_PORT) {
    return Number(env.CODE_SERVER_PORT);
  }
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function waitForHealth(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${URL_BASE}/healthz`)).ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer on ${URL_BASE}; see ${join(work, 'code-server.log')}`);
}

async function stopProcessGroup(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid) {
    return;
  }
  const group = -child.pid;
  const alive = () => {
    try {
      process.kill(group, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(group, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 40 && alive(); i++) {
    await new Promise((r) => setTimeout(r, 250));
  }
  if (alive()) {
    process.kill(group, 'SIGKILL');
  }
}

describe('VS Code extension in code-server', { skip }, () => {
  let codeServer: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let chatView: FrameLocator;

  const shot = (name: string) => page.screenshot({ path: join(dirs.screenshots, name) });

  async function runCommand(title: string): Promise<void> {
    await page.keyboard.press('F1');
    await page.locator('.quick-input-widget input').fill(`>${title}`);
    // Click the row: Enter would run whichever fuzzy match the palette ranks first.
    await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().click({ timeout: TIMEOUT });
  }

  /** Keeps a screenshot and the chat panel's text of a failing step for the CI log. */
  async function withFailureShot(name: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      await shot(name).catch(() => undefined);
      const panel = await page.locator('.interactive-session').first().innerText({ timeout: 1000 }).catch(() => '(no chat panel)');
      console.error(`chat panel text at failure:\n${panel}`);
      throw error;
    }
  }

  /**
   * Opens a workspace file with Quick Open (Ctrl+P) and waits for its editor. By its
   * absolute path: a file written just now may not be in the file search's index yet.
   */
  async function openFile(name: string): Promise<void> {
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill(join(dirs.workspace, name));
    await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().click({ timeout: TIMEOUT });
    await page.locator('.tabs-container .tab.active', { hasText: name }).waitFor({ timeout: TIMEOUT });
  }

  /** The text area of the active editor. */
  const activeEditor = () => page.locator('.editor-group-container.active .editor-instance .monaco-editor .view-lines').first();

  async function sendInView(text: string): Promise<void> {
    const prompt = chatView.locator('#prompt');
    await prompt.fill(text);
    await prompt.press('Enter');
  }

  before(async () => {
    PORT = await choosePort();
    URL_BASE = `http://127.0.0.1:${PORT}`;
    prepareProfile();
    codeServer = startCodeServer();
    await waitForHealth();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${URL_BASE}/?folder=${encodeURIComponent(dirs.workspace)}`);
    await page.locator('.monaco-workbench .activitybar').waitFor({ timeout: 60_000 });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await stopProcessGroup(codeServer);
  });

  test('a server that cannot start: one message with the command, exit code, stderr tail and the ways out', async () => {
    const toasts = page.locator('.notifications-toasts .notification-toast');
    const failure = toasts.filter({ hasText: 'Crush could not start crush-ls' });
    await failure.first().waitFor({ timeout: 60_000 });
    const text = await failure.first().innerText();
    assert.match(text, /-c 'import sys; sys\.stderr\.write/, 'the command line tried');
    assert.match(text, /exited with code 3/);
    assert.match(text, /crush-ls: fake start failure/, 'the stderr tail');
    for (const action of ['Open Settings', 'Show Log', 'Install crush-ls']) {
      assert.equal(await failure.first().getByRole('button', { name: action }).count(), 1, action);
    }
    await page.locator('.activitybar [aria-label^="Crush"]').first().click();
    chatView = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await chatView.locator('#prompt').waitFor({ timeout: 60_000 });
    const server = chatView.locator('#server.server-problem');
    await server.filter({ hasText: 'exited with code 3' }).waitFor({ timeout: TIMEOUT });
    await sendInView('this cannot be answered');
    await shot('vscode-start-failure.png');
    assert.equal(await failure.count(), 1, 'a single notification, also after using the view');
    const all = (await toasts.allInnerTexts()).join('\n');
    assert.doesNotMatch(all, /couldn't create connection|Pending response rejected|EPIPE/, 'no language-client toasts');
  });

  test('"Install crush-ls" installs the wheel into a venv with progress, then a prompt is answered', async () => {
    const failure = page.locator('.notifications-toasts .notification-toast', { hasText: 'Crush could not start crush-ls' });
    await failure.first().getByRole('button', { name: 'Install crush-ls' }).click();
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'Installing crush-ls' }).first().waitFor({ timeout: TIMEOUT });
    // The running server hides the problem; the settings now name the installed server.
    const installFailed = chatView.locator('#server', { hasText: 'could not install' }).waitFor({ timeout: INSTALL_TIMEOUT })
      .then(async () => assert.fail(await chatView.locator('#server').innerText()));
    await Promise.race([chatView.locator('#server').waitFor({ state: 'hidden', timeout: INSTALL_TIMEOUT }), installFailed]);
    installFailed.catch(() => undefined); // the race is decided
    const settings = JSON.parse(readFileSync(join(dirs.userData, 'User', 'settings.json'), 'utf8'));
    assert.match(settings['crush.server.command'], /globalStorage\/crush-ls\.crush-ls-vscode\/venv\/bin\/crush-ls$/);
    assert.deepEqual(settings['crush.server.args'], []);
  });

  test('"Crush: Show Log" shows the log with crush-ls doctor\'s report', async () => {
    await runCommand('Crush: Show Log');
    const log = page.locator('.part.panel .monaco-editor .view-lines');
    await log.filter({ hasText: 'crush-ls doctor exited with code 0' }).waitFor({ timeout: 60_000 });
    assert.match(await log.innerText(), /No\s+problems\s+found\./);
  });

  test('the chat view streams a reply', async () => {
    await sendInView('hello from the view');
    await chatView.locator('.entry.user', { hasText: 'hello from the view' }).waitFor({ timeout: TIMEOUT });
    // Seen while streaming (the scripted reply takes about 700 ms), then finished.
    await chatView.locator('.entry.assistant.streaming').waitFor({ timeout: TIMEOUT });
    const reply = chatView.locator('.entry.assistant:not(.streaming) .body', { hasText: 'Hello from the script' });
    await reply.waitFor({ timeout: TIMEOUT });
    assert.equal((await reply.innerText()).trim(), 'Hello from the script');
    await chatView.locator('#busy').waitFor({ state: 'hidden', timeout: TIMEOUT });
  });

  test('a slow turn shows the queue and is cancelled', async () => {
    await sendInView('slow one');
    await chatView.locator('.entry.assistant.streaming', { hasText: 'tick' }).waitFor({ timeout: TIMEOUT });
    await sendInView('slow two');
    const queue = chatView.locator('#queue');
    await queue.filter({ hasText: '1 queued' }).waitFor({ timeout: TIMEOUT });
    await shot('vscode-queue.png');
    await chatView.locator('#cancel').click();
    await chatView.locator('.entry.assistant .finish', { hasText: 'Canceled' }).waitFor({ timeout: TIMEOUT });
    await chatView.locator('#busy').waitFor({ state: 'hidden', timeout: TIMEOUT });
    await queue.waitFor({ state: 'hidden', timeout: TIMEOUT });
    assert.equal(await chatView.locator('.entry.user', { hasText: 'slow two' }).count(), 0, 'the queued prompt never ran');
  });

  test('"take back" puts the last queued prompt back in the box', async () => {
    await sendInView('slow three');
    await chatView.locator('.entry.assistant.streaming', { hasText: 'tick' }).waitFor({ timeout: TIMEOUT });
    await sendInView('slow four');
    const queue = chatView.locator('#queue');
    await queue.filter({ hasText: '1 queued' }).waitFor({ timeout: TIMEOUT });
    await chatView.locator('#take-back').click();
    await queue.waitFor({ state: 'hidden', timeout: TIMEOUT });
    assert.equal(await chatView.locator('#prompt').inputValue(), 'slow four');
    await chatView.locator('#prompt').fill('');
    await chatView.locator('#cancel').click();
    await chatView.locator('#busy').waitFor({ state: 'hidden', timeout: TIMEOUT });
    assert.equal(await chatView.locator('.entry.user', { hasText: 'slow four' }).count(), 0, 'the prompt taken back never ran');
  });

  test('a failed run is shown in the view and as an error notification', async () => {
    await sendInView('fail now');
    await chatView.locator('.entry.error', { hasText: 'scripted failure' }).first().waitFor({ timeout: TIMEOUT });
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'scripted failure' }).first().waitFor({ timeout: TIMEOUT });
    await chatView.locator('#busy').waitFor({ state: 'hidden', timeout: TIMEOUT });
  });

  test('a write asks in a modal; Allow runs it and the card shows the diff', async () => {
    await sendInView('write a file please');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.filter({ hasText: 'Crush wants to write' }).waitFor({ timeout: TIMEOUT });
    assert.match(await dialog.innerText(), /a\.txt/);
    await shot('vscode-permission.png');
    await dialog.getByRole('button', { name: 'Allow', exact: true }).click();
    const card = chatView.locator('.tool-card.status-completed', { hasText: 'write' });
    await card.waitFor({ timeout: TIMEOUT });
    assert.match(await card.locator('.diff').innerText(), /^\+x$/m);
    await chatView.locator('.entry.assistant .body', { hasText: 'Wrote a.txt.' }).waitFor({ timeout: TIMEOUT });
    assert.equal(readFileSync(join(dirs.workspace, 'a.txt'), 'utf8'), 'x\n');
    await shot('vscode-chat-view.png');
  });

  test('the active file and its selection show as chips; a removed chip is not sent', async () => {
    await withFailureShot('failure-context.png', async () => {
      writeFileSync(join(dirs.workspace, 'ctx.txt'), 'first line\nsecond line\n');
      await openFile('ctx.txt');
      const chips = chatView.locator('#context .chip');
      await chips.filter({ hasText: 'ctx.txt' }).first().waitFor({ timeout: TIMEOUT });
      await activeEditor().click();
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('Shift+ArrowDown');
      const selection = chatView.locator('#context .chip-selection', { hasText: 'ctx.txt:1' });
      await selection.waitFor({ timeout: TIMEOUT });
      await shot('vscode-context-chips.png');
      await selection.locator('.chip-remove').click();
      await selection.waitFor({ state: 'detached', timeout: TIMEOUT });
      assert.deepEqual((await chips.allInnerTexts()).map((t) => t.replace('×', '').trim()), ['ctx.txt']);
      await sendInView('context please');
      // The user message as the server stored it (message_created): its context parts.
      const user = chatView.locator('.entry.user', { hasText: 'context please' });
      await user.locator('.chip-file', { hasText: 'ctx.txt' }).waitFor({ timeout: TIMEOUT });
      assert.equal(await user.locator('.chip-selection').count(), 0, 'the removed selection was not sent');
      await chatView.locator('#busy').waitFor({ state: 'hidden', timeout: TIMEOUT });
    });
  });

  test('@crush answers in the chat panel', async () => {
    await withFailureShot('failure-chat-panel.png', async () => {
    await runCommand('Crush Test: Open Chat with @crush');
    // The command fills in "@crush " asynchronously: type only after it is there, and send
    // only what reads "@crush panel question" (else the default agent gets the request).
    const input = page.locator('.interactive-input-part .monaco-editor .view-lines').first();
    await input.filter({ hasText: '@crush' }).waitFor({ timeout: TIMEOUT });
    await input.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('panel question');
    await input.filter({ hasText: '@crush panel question' }).waitFor({ timeout: TIMEOUT });
    await page.keyboard.press('Enter');
    // The whole streamed answer, rendered as markdown (bold part included).
    const answer = page.locator('.interactive-session', { hasText: 'Answer for the chat panel from crush-ls' }).first();
    await answer.waitFor({ timeout: TIMEOUT });
    assert.equal(await answer.locator('strong', { hasText: 'for the chat panel' }).count(), 1);
    await shot('vscode-chat-participant.png');
    });
  });

  test('stopping @crush in the chat panel cancels the crush-ls run', async () => {
    await withFailureShot('failure-chat-cancel.png', async () => {
      const input = page.locator('.interactive-input-part .monaco-editor .view-lines').first();
      await input.filter({ hasText: '@crush' }).waitFor({ timeout: TIMEOUT });
      await input.click();
      await page.keyboard.press('Control+End');
      await page.keyboard.type('slow panel question');
      await input.filter({ hasText: '@crush slow panel question' }).waitFor({ timeout: TIMEOUT });
      await page.keyboard.press('Enter');
      await page.locator('.interactive-session .interactive-response', { hasText: 'tick tick' }).last().waitFor({ timeout: TIMEOUT });
      await page.locator('.interactive-input-part [aria-label^="Cancel"]').first().click();
      // VS Code drops what a participant streams after the stop, so look at the
      // crush-ls session itself: open it in the Crush view with the session picker.
      await chatView.locator('#pick-session').click();
      // One chat conversation is one crush-ls session, named after its first prompt.
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'panel question' }).first().click();
      await chatView.locator('.entry.user', { hasText: 'slow panel question' }).waitFor({ timeout: TIMEOUT });
      const prompts = (await chatView.locator('.entry.user .body').allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(prompts, ['panel question', 'slow panel question']);
      // VS Code's chip of the selection in ctx.txt went with @crush as context (with its file).
      const chips = await chatView.locator('.entry.user').first().locator('.chip').allInnerTexts();
      assert.deepEqual(chips.map((t) => t.trim()), ['ctx.txt', 'ctx.txt:1']);
      const reply = chatView.locator('.entry.assistant').last();
      await reply.locator('.finish', { hasText: 'Canceled' }).waitFor({ timeout: TIMEOUT });
      const ticks = (await reply.locator('.body').innerText()).split('tick').length - 1;
      assert.ok(ticks > 0 && ticks < 200, `the run stopped early (${ticks} of 200 ticks)`);
    });
  });

  /** The installed crush-ls of this profile (found by its path under the work dir, not by name). */
  function serverPids(): number[] {
    const venv = join(dirs.userData, 'User', 'globalStorage', 'crush-ls.crush-ls-vscode', 'venv');
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv.includes('--stdio') && argv.some((a) => a.startsWith(venv));
      } catch {
        return false; // gone meanwhile
      }
    });
  }

  test('the crush.* commands: new session, send from the palette and with an argument', async () => {
    await withFailureShot('failure-commands.png', async () => {
      await runCommand('Crush: New Session');
      await chatView.locator('.entry').first().waitFor({ state: 'detached', timeout: TIMEOUT });
      await runCommand('Crush: Send Prompt');
      await page.locator('.quick-input-widget', { hasText: 'Ask Crush' }).waitFor({ timeout: TIMEOUT });
      await page.locator('.quick-input-widget input').fill('prompt from the palette');
      await page.keyboard.press('Enter');
      await chatView.locator('.entry.user', { hasText: 'prompt from the palette' }).waitFor({ timeout: TIMEOUT });
      await chatView.locator('.entry.assistant:not(.streaming)', { hasText: 'Hello from the script' }).waitFor({ timeout: TIMEOUT });
      await runCommand('Crush Test: Send a Prompt as Argument');
      await chatView.locator('.entry.user', { hasText: 'prompt given as an argument' }).waitFor({ timeout: TIMEOUT });
      await chatView.locator('.entry.assistant:not(.streaming)').nth(1).waitFor({ timeout: TIMEOUT });
      const prompts = (await chatView.locator('.entry.user .body').allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(prompts, ['prompt from the palette', 'prompt given as an argument']);
      assert.equal(await chatView.locator('#sessions option:checked').innerText(), 'prompt from the palette');
    });
  });
  /** Answers the permission modal of the next write/edit with Allow. */
  async function allowNextChange(): Promise<void> {
    const dialog = page.locator('.monaco-dialog-box', { hasText: 'Crush wants to' });
    await dialog.waitFor({ timeout: TIMEOUT });
    await dialog.getByRole('button', { name: 'Allow', exact: true }).click();
    await dialog.waitFor({ state: 'detached', timeout: TIMEOUT });
  }

  test('an agent edit of the open file appears in its editor, saved, and Ctrl+Z undoes it', async () => {
    await withFailureShot('failure-undo.png', async () => {
      const file = join(dirs.workspace, 'undo.txt');
      writeFileSync(file, 'alpha\nbeta\ngamma\n');
      await openFile('undo.txt');
      await sendInView('edit the open file');
      await allowNextChange();
      await activeEditor().filter({ hasText: 'BETA' }).waitFor({ timeout: TIMEOUT });
      await chatView.locator('.entry.assistant .body', { hasText: 'Edited undo.txt.' }).waitFor({ timeout: TIMEOUT });
      // The buffer had no unsaved changes: the extension saved it (agent/saveDocument).
      assert.equal(readFileSync(file, 'utf8'), 'alpha\nBETA\ngamma\n');
      assert.equal(await page.locator('.tabs-container .tab.active.dirty').count(), 0, 'saved, not dirty');
      await shot('vscode-agent-edit.png');
      await activeEditor().click();
      await page.keyboard.press('Control+Z');
      await activeEditor().filter({ hasText: 'beta' }).waitFor({ timeout: TIMEOUT });
      assert.doesNotMatch(await activeEditor().innerText(), /BETA/);
      await page.keyboard.press('Control+S'); // back as it was, for the tests after this one
    });
  });

  test('diagnostics of a file with a syntax error reach the model', async () => {
    await withFailureShot('failure-diagnostics.png', async () => {
      writeFileSync(join(dirs.workspace, 'broken.json'), '{"a": 1 "b": 2}\n');
      await openFile('broken.json');
      await page.locator('.editor-group-container.active .squiggly-error').first().waitFor({ timeout: TIMEOUT });
      await sendInView('check the problems');
      const card = chatView.locator('.tool-card.status-completed', { hasText: 'diagnostics' });
      await card.waitFor({ timeout: TIMEOUT });
      // The tool result is what the model was given.
      assert.match(await card.locator('.tool-result pre').textContent() ?? '', /broken\.json[\s\S]*Expected comma/);
      await chatView.locator('.entry.assistant .body', { hasText: 'Checked the problems.' }).waitFor({ timeout: TIMEOUT });
    });
  });

  test('the changed files are listed; the diff editor\'s Reject reverts one hunk of two', async () => {
    await withFailureShot('failure-review.png', async () => {
      const file = join(dirs.workspace, 'hunks.txt');
      const lines = Array.from({ length: 12 }, (_, i) => `line ${i + 1}\n`);
      writeFileSync(file, lines.join(''));
      await sendInView('change two places');
      await allowNextChange();
      await chatView.locator('.entry.assistant .body', { hasText: 'Changed two places.' }).waitFor({ timeout: TIMEOUT });
      const row = chatView.locator('#changes .change', { hasText: 'hunks.txt' });
      await row.waitFor({ timeout: TIMEOUT });
      assert.match(await row.innerText(), /M\s+hunks\.txt\s+\+2 -2/);
      await shot('vscode-changes.png');
      await row.locator('.change-path').click();
      const diff = page.locator('.monaco-diff-editor');
      await page.locator('.tabs-container .tab.active', { hasText: 'hunks.txt (Crush' }).waitFor({ timeout: TIMEOUT });
      const reject = diff.locator('.codelens-decoration a', { hasText: 'Reject' });
      await reject.first().waitFor({ timeout: TIMEOUT });
      assert.equal(await reject.count(), 2, 'one Reject per hunk');
      await shot('vscode-diff-review.png');
      await reject.first().click();
      // The list follows agent/review (change_reviewed): one hunk rejected, one left.
      await row.filter({ hasText: '1 rejected' }).waitFor({ timeout: TIMEOUT });
      await diff.locator('.codelens-decoration a', { hasText: 'Reject' }).nth(1).waitFor({ state: 'detached', timeout: TIMEOUT });
      const expected = lines.map((l) => (l === 'line 11\n' ? 'LINE 11\n' : l)).join('');
      assert.equal(readFileSync(file, 'utf8'), expected, 'the first hunk reverted, the second kept');
    });
  });

  test('rewind asks naming the file, restores it, and is undone by "Undo rewind"', async () => {
    await withFailureShot('failure-rewind.png', async () => {
      const file = join(dirs.workspace, 'rewind.txt');
      writeFileSync(file, 'original\n');
      await sendInView('replace the rewind file');
      await allowNextChange();
      await chatView.locator('.entry.assistant .body', { hasText: 'Replaced it.' }).waitFor({ timeout: TIMEOUT });
      assert.equal(readFileSync(file, 'utf8'), 'changed by the agent\n');
      const user = chatView.locator('.entry.user', { hasText: 'replace the rewind file' });
      await user.hover();
      await user.locator('.rewind').click();
      const dialog = page.locator('.monaco-dialog-box', { hasText: 'Rewind to before' });
      await dialog.waitFor({ timeout: TIMEOUT });
      assert.match(await dialog.innerText(), /rewind\.txt \(restored\)/);
      await shot('vscode-rewind-confirm.png');
      await dialog.getByRole('button', { name: 'Rewind', exact: true }).click();
      await user.waitFor({ state: 'detached', timeout: TIMEOUT });
      assert.equal(readFileSync(file, 'utf8'), 'original\n');
      assert.equal(await chatView.locator('#prompt').inputValue(), 'replace the rewind file', 'the prompt is back in the box');
      await chatView.locator('#unrewind').click();
      await user.waitFor({ timeout: TIMEOUT });
      assert.equal(readFileSync(file, 'utf8'), 'changed by the agent\n');
      await chatView.locator('#prompt').fill('');
    });
  });

  test('a server killed mid-session is restarted and the transcript reloaded', async () => {
    await withFailureShot('failure-reconnect.png', async () => {
      const prompts = async () => (await chatView.locator('.entry.user .body').allInnerTexts()).map((t) => t.trim());
      const before = await prompts();
      assert.ok(before.length >= 2, 'the session has a history');
      // Marks the rendered entries: a reload replaces them with ones read from storage.
      await chatView.locator('#messages').evaluate((m) => m.querySelectorAll('.entry').forEach((e: { setAttribute(n: string, v: string): void }) => e.setAttribute('data-before-crash', '')));
      const [pid, ...others] = serverPids();
      assert.ok(pid && others.length === 0, `one server process (${[pid, ...others]})`);
      process.kill(pid, 'SIGKILL');
      await chatView.locator('#server.server-notice', { hasText: 'Reconnected to crush-ls' }).waitFor({ timeout: 60_000 });
      assert.match(await chatView.locator('#server').innerText(), /killed by SIGKILL \(restart 1 of 3\)/);
      assert.deepEqual(await prompts(), before);
      assert.equal(await chatView.locator('.entry[data-before-crash]').count(), 0, 'the transcript was reloaded');
      assert.notEqual(serverPids()[0], pid);
      await sendInView('after the crash');
      await chatView.locator('.entry.user', { hasText: 'after the crash' }).waitFor({ timeout: TIMEOUT });
      await chatView.locator('.entry.assistant:not(.streaming)').nth(before.length).waitFor({ timeout: TIMEOUT });
      await shot('vscode-reconnected.png');
    });
  });
  test('a server that keeps crashing is given up on, and the view and one notification say why', async () => {
    await withFailureShot('failure-gave-up.png', async () => {
      const notice = chatView.locator('#server');
      for (const restart of [2, 3]) {
        process.kill(serverPids()[0], 'SIGKILL');
        await notice.filter({ hasText: `(restart ${restart} of 3)` }).filter({ hasText: 'Reconnected' }).waitFor({ timeout: 60_000 });
      }
      process.kill(serverPids()[0], 'SIGKILL');
      const problem = chatView.locator('#server.server-problem', { hasText: 'Crush stopped restarting it' });
      await problem.waitFor({ timeout: 60_000 });
      assert.match(await problem.innerText(), /crush-ls stopped 4 times in 5 minutes; .* The last time: .* was killed by SIGKILL/);
      const toasts = page.locator('.notifications-toasts .notification-toast', { hasText: 'Crush stopped restarting it' });
      await toasts.first().waitFor({ timeout: TIMEOUT });
      assert.equal(await toasts.count(), 1);
      assert.deepEqual(serverPids(), [], 'no server left running');
      await shot('vscode-gave-up.png');
    });
  });
});
