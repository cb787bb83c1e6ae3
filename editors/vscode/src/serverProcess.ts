// The crush-ls process, spawned by the extension itself (not by the language
// client) so that a failure can be explained: the command line, how it ended
// and the last lines of its stderr.

import { ChildProcess, spawn } from 'node:child_process';

/** How many stderr lines a failure message quotes, and how many the tail keeps. */
const QUOTED_LINES = 3;
const KEPT_LINES = 20;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawn failure; `notFound` when the command does not exist (a first run offers the installer). */
export class SpawnError extends Error {
  constructor(message: string, readonly notFound: boolean) {
    super(message);
  }
}

export class ServerProcess {
  private readonly lines: string[] = [];
  private partial = '';
  readonly exited: Promise<Exit>;

  // The language client copies stderr into the output channel itself; this keeps the tail.
  private constructor(readonly child: ChildProcess, readonly commandLine: string) {
    // 'close', not 'exit': by then stderr is read to its end, so the tail is complete.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      parts.forEach((line) => this.keep(line));
    });
    child.stderr?.on('end', () => this.partial && this.keep(this.partial));
  }

  /** Resolves once the process runs; rejects (with the reason in words) when it cannot be spawned. */
  static async start(command: string, args: string[]): Promise<ServerProcess> {
    const commandLine = [command, ...args].map(quote).join(' ');
    const child = spawn(command, args, { stdio: 'pipe', env: process.env });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error: NodeJS.ErrnoException) => {
        const notFound = error.code === 'ENOENT';
        reject(new SpawnError(`\`${commandLine}\` ${notFound ? 'was not found (no such command)' : `could not run: ${error.message}`}.`, notFound));
      });
    });
    return new ServerProcess(child, commandLine);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last stderr lines (non-empty), oldest first. */
  tail(count = QUOTED_LINES): string[] {
    return this.lines.filter((line) => line.trim()).slice(-count);
  }

  /** The exit, if it comes within `ms` (a process that closed its pipes exits right after). */
  async exitWithin(ms: number): Promise<Exit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private keep(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) {
      this.lines.shift();
    }
  }
}

export function describeExit(exit: Exit | undefined): string {
  if (!exit) {
    return 'stopped answering';
  }
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** "`cmd args` exited with code 3. Its last stderr lines: a | b | c" */
export function describeFailure(commandLine: string, what: string, tail: string[]): string {
  const stderr = tail.length ? ` Last lines of its stderr: ${tail.join(' | ')}` : ' It wrote nothing to stderr.';
  return `\`${commandLine}\` ${what}.${stderr}`;
}

function quote(part: string): string {
  return /^[\w@%+=:,./-]+$/.test(part) ? part : `'${part.replace(/'/g, `'\\''`)}'`;
}
