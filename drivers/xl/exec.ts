// Running xl and the xenstore tools: every command with a timeout, killed (by its own
// PID) when it overruns, and its failure turned into a DriverError that keeps the
// command line, exit code and stderr.
import { spawn } from 'node:child_process';
import { DriverError, type DriverErrorKind } from '../driver.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface Runner {
  (cmd: string, args: string[], opts: { timeoutMs: number; input?: string }): Promise<RunResult>;
}

export function commandLine(cmd: string, args: string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Recognises what a failed xl command's stderr means. */
export function classify(stderr: string): DriverErrorKind {
  const s = stderr.toLowerCase();
  if (/domain .*(does not exist|not found)|invalid domain identifier|no such domain|domain not found/.test(s)) return 'no-such-domain';
  if (/domain with name .* already exists|already exists/.test(s)) return 'exists';
  if (/bootloader|pygrub/.test(s) && /(fail|error|unable|cannot|no such)/.test(s)) return 'bootloader';
  if (/(not enough|insufficient|failed to claim|cannot allocate) memory|out of memory|enomem|claim/.test(s)) return 'no-memory';
  if (/pv control interface not available|no pv drivers|pv drivers/.test(s)) return 'no-pv-drivers';
  if (/device .*(already|exists)|unable to add device|failed to add device|device not found|unable to remove device|libxl_device_/.test(s)) return 'device';
  if (/libxl__build|domain_create|build failed|failed to build|xc_dom|xg_dom|\(re-\)build domain|libxl_domain_create|cannot make domain/.test(s)) return 'build';
  if (/not supported|unsupported|not implemented/.test(s)) return 'unsupported';
  if (/usage:|invalid|unknown|bad value|parsing/.test(s)) return 'invalid';
  return 'failed';
}

/** What a person would read first: libxl reports the cause first and then its own
 * clean-up, so the first error line is kept along with the last lines (five at most). */
export function summary(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length <= 5) return lines.join(' | ') || 'no message';
  const tail = lines.slice(-3);
  const first = lines.findIndex((l) => /error|fail/i.test(l));
  const head = first >= 0 && first < lines.length - 3 ? [lines[first]!, '…'] : [];
  return [...head, ...tail].join(' | ');
}

export const spawnRunner: Runner = (cmd, args, opts) =>
  new Promise((resolve, reject) => {
    const line = commandLine(cmd, args);
    let child;
    try {
      child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new DriverError('failed', `${line}: ${(e as Error).message}`, { command: line }));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const kind: DriverErrorKind = e.code === 'ENOENT' ? 'unsupported' : 'failed';
      reject(new DriverError(kind, `${line}: ${e.message}`, { command: line }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(new DriverError('timeout', `${line}: no answer after ${opts.timeoutMs / 1000}s`, { command: line, stderr, timeoutSec: opts.timeoutMs / 1000 }));
      } else if (code !== 0) {
        reject(new DriverError(classify(stderr), `${line} failed (exit ${code}): ${summary(stderr)}`, { command: line, exitCode: code, stderr }));
      } else {
        resolve({ stdout, stderr });
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
