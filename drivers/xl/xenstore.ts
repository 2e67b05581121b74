// dom0's xenstore through the xenstore tools: xenstore-read, -write, -ls -f and -rm,
// each with the driver's command timeout, and one long-running xenstore-watch per watch.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DriverError } from '../driver.js';
import type { Runner } from './exec.js';
import { parseXenstoreLs } from './parse.js';

export interface XenstoreToolsOptions {
  /** Directory of the tools (default: found on PATH). */
  bin?: string;
  run: Runner;
  timeoutMs: number;
  log?: (msg: string, detail?: Record<string, unknown>) => void;
}

export class XenstoreTools {
  private readonly watchers = new Set<ChildProcess>();
  private closed = false;

  constructor(private readonly opts: XenstoreToolsOptions) {}

  private tool(name: string): string {
    return this.opts.bin ? path.join(this.opts.bin, name) : name;
  }

  async read(p: string): Promise<string | undefined> {
    try {
      return (await this.opts.run(this.tool('xenstore-read'), [p], { timeoutMs: this.opts.timeoutMs })).stdout.replace(/\n$/, '');
    } catch (e) {
      if (e instanceof DriverError && e.kind !== 'timeout' && /no such file|enoent|could not read/i.test(e.detail.stderr ?? '')) return undefined;
      throw e;
    }
  }

  async write(p: string, value: string): Promise<void> {
    await this.opts.run(this.tool('xenstore-write'), [p, value], { timeoutMs: this.opts.timeoutMs });
  }

  async list(p: string): Promise<Record<string, string>> {
    try {
      return parseXenstoreLs((await this.opts.run(this.tool('xenstore-ls'), ['-f', p], { timeoutMs: this.opts.timeoutMs })).stdout, p);
    } catch (e) {
      if (e instanceof DriverError && /no such file|enoent/i.test(e.detail.stderr ?? '')) return {};
      throw e;
    }
  }

  async remove(p: string): Promise<void> {
    await this.opts.run(this.tool('xenstore-rm'), [p], { timeoutMs: this.opts.timeoutMs });
  }

  /** A long-running xenstore-watch; each line it prints is a changed path. */
  watch(p: string, onLine: (path: string) => void): () => void {
    const child = spawn(this.tool('xenstore-watch'), [p], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.watchers.add(child);
    child.on('error', (e) => this.opts.log?.('xenstore-watch failed', { path: p, err: e.message }));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!this.closed) onLine(line.trim());
    });
    child.on('exit', () => this.watchers.delete(child));
    return () => {
      this.watchers.delete(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
  }

  /** Ends every watch; lines still buffered from them are dropped. */
  close(): void {
    this.closed = true;
    for (const c of this.watchers) c.kill('SIGTERM');
    this.watchers.clear();
  }
}
