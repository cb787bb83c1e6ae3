// "Crush: Install crush-ls": a virtual environment in the extension's global
// storage with crush-ls installed into it, from the folder the extension was
// built from (or `crush.install.package`: a wheel, a folder or a package spec).

import * as vscode from 'vscode';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MIN_PYTHON: [number, number] = [3, 11];
const HOW_TO_GET_PYTHON =
  'Install Python 3.11 or newer from https://www.python.org/downloads/ or with your package manager ' +
  '(Debian/Ubuntu: `sudo apt install python3 python3-venv`; macOS: `brew install python@3.12`), ' +
  'or set "crush.install.python" to its path; then run "Crush: Install crush-ls".';

export class InstallError extends Error {}

const bin = (venv: string, name: string) =>
  process.platform === 'win32' ? join(venv, 'Scripts', `${name}.exe`) : join(venv, 'bin', name);

export function venvDir(context: vscode.ExtensionContext): string {
  return join(context.globalStorageUri.fsPath, 'venv');
}

/** The crush-ls of an earlier install, if there is one. */
export function installedServer(context: vscode.ExtensionContext): string | undefined {
  const server = bin(venvDir(context), 'crush-ls');
  return existsSync(server) ? server : undefined;
}

interface Ran {
  code: number | null;
  output: string[];
}

/** Runs a command to its end, copying its output to the log; never rejects. */
export function run(command: string, args: string[], log: vscode.LogOutputChannel): Promise<Ran> {
  return new Promise((resolve) => {
    const output: string[] = [];
    log.info(`$ ${[command, ...args].join(' ')}`);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) =>
      chunk.toString().split('\n').filter((l) => l.trim()).forEach((line) => (output.push(line), log.info(line)));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (error) => resolve({ code: null, output: [error.message] }));
    child.once('close', (code) => resolve({ code, output }));
  });
}

const tail = (ran: Ran) => ran.output.slice(-3).join(' | ');

async function findPython(log: vscode.LogOutputChannel): Promise<string> {
  const configured = vscode.workspace.getConfiguration('crush').get<string>('install.python');
  const candidates = configured ? [configured] : process.platform === 'win32' ? ['py', 'python'] : ['python3', 'python'];
  const tooOld: string[] = [];
  for (const candidate of candidates) {
    const ran = await run(candidate, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], log);
    const version = ran.code === 0 ? ran.output[ran.output.length - 1]?.trim() : undefined;
    if (!version) {
      continue;
    }
    const [major, minor] = version.split('.').map(Number);
    if (major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1])) {
      return candidate;
    }
    tooOld.push(`${candidate} is Python ${version}`);
  }
  const found = tooOld.length ? tooOld.join(', ') : `no Python found (tried ${candidates.join(', ')})`;
  throw new InstallError(`crush-ls needs Python 3.11 or newer: ${found}. ${HOW_TO_GET_PYTHON}`);
}

/** What pip installs: the setting, else the folder the extension was built from (out/source.json). */
function packageSpec(context: vscode.ExtensionContext): string {
  const configured = vscode.workspace.getConfiguration('crush').get<string>('install.package');
  if (configured) {
    return configured;
  }
  let source: string | undefined;
  try {
    source = JSON.parse(readFileSync(join(context.extensionPath, 'out', 'source.json'), 'utf8')).folder;
  } catch {
    source = undefined;
  }
  if (source && existsSync(join(source, 'pyproject.toml'))) {
    return `${source}[local]`;
  }
  throw new InstallError(
    `Crush does not know where to install crush-ls from${source ? ` (${source}, where it was built, is gone)` : ''}: ` +
      'set "crush.install.package" to a wheel, a source folder or a package spec.',
  );
}

/** Creates the environment and installs crush-ls, with a progress notification; returns the server command. */
export async function installServer(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): Promise<string> {
  const title = 'Installing crush-ls';
  return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, async (progress) => {
    const step = (message: string) => {
      log.info(`${title}: ${message}`);
      progress.report({ message });
    };
    step('checking Python…');
    const python = await findPython(log);
    const venv = venvDir(context);
    const spec = packageSpec(context);
    step(`creating a virtual environment in ${venv}…`);
    const created = await run(python, ['-m', 'venv', '--clear', venv], log);
    if (created.code !== 0) {
      throw new InstallError(
        `\`${python} -m venv\` exited with code ${created.code}: ${tail(created)}. ` +
          'On Debian and Ubuntu the venv module is a separate package: `sudo apt install python3-venv`.',
      );
    }
    step(`installing ${spec} (pip; this can take a few minutes)…`);
    const installed = await run(bin(venv, 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', spec], log);
    if (installed.code !== 0) {
      throw new InstallError(`\`pip install ${spec}\` exited with code ${installed.code}: ${tail(installed)}`);
    }
    const server = bin(venv, 'crush-ls');
    step('checking the server…');
    const checked = await run(server, ['--version'], log);
    if (checked.code !== 0) {
      throw new InstallError(`the installed \`${server} --version\` exited with code ${checked.code}: ${tail(checked)}`);
    }
    log.info(`${title}: done, ${checked.output.join(' ')} at ${server}`);
    return server;
  });
}
