// A domain's text console through `xl console -t pv`: the child's output goes to the
// listeners, what is written goes to its input, and closing the stream kills it.
import { spawn } from 'node:child_process';
import { DriverError, type ConsoleStream } from '../driver.js';

export async function openConsole(xl: string, domid: number): Promise<ConsoleStream> {
  const child = spawn(xl, ['console', '-t', 'pv', String(domid)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const listeners = new Set<(t: string) => void>();
  const errors: string[] = [];
  child.stdout!.on('data', (b: Buffer) => {
    for (const l of listeners) l(b.toString('utf8'));
  });
  child.stderr!.on('data', (b: Buffer) => errors.push(b.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (e) => reject(new DriverError('failed', `xl console ${domid}: ${e.message}`, { command: `xl console ${domid}` })));
  });
  return {
    onData: (l) => listeners.add(l),
    write: (t) => {
      child.stdin!.write(t);
    },
    close: () => {
      listeners.clear();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}
