// Moving a disk's bytes from one attached VDI to another with qemu-img convert, which
// reads any format the plugins hand out (qcow2 chains included), skips zeroes and
// reports progress. The bytes are on disk when it resolves. Cancelling kills it; the
// caller cleans up the destination.
import { open } from 'node:fs/promises';
import type { ChildRegistry } from './children.js';
import { ChildRegistry as Registry } from './children.js';

export const QEMU_IMG = process.env.XAPID_QEMU_IMG ?? 'qemu-img';

export interface CopyEnds { path: string; format: string }

export interface CopyOptions {
  children: ChildRegistry;
  /** The destination is freshly made and reads as zeroes: zero regions need no writing. */
  targetIsZero?: boolean;
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

export class CopyCancelled extends Error {}

export async function copyImage(src: CopyEnds, dst: CopyEnds, o: CopyOptions): Promise<void> {
  // convert writes through the page cache and never flushes (its default cache mode is
  // "unsafe"), but a copy that returns must survive a crash: the destination is flushed
  // before this resolves. Flushing as the copy goes too (one flush at a time, started
  // at each progress step) keeps the disk writing while qemu-img reads: measured about
  // a quarter faster than a single flush at the end, which also beat -t writeback.
  const fh = await open(dst.path, 'r');
  let flushing: Promise<void> | undefined;
  // A midway flush that fails is left to the last one to report.
  const flushSoon = () => {
    flushing ??= fh.datasync().catch(() => undefined).finally(() => (flushing = undefined));
  };
  try {
    await convert(src, dst, {
      ...o,
      onProgress: (p) => {
        flushSoon();
        o.onProgress?.(p);
      },
    });
    await flushing;
    await fh.datasync();
  } finally {
    await flushing;
    await fh.close();
  }
  if (o.signal?.aborted) throw new CopyCancelled('the copy was cancelled');
}

function convert(src: CopyEnds, dst: CopyEnds, o: CopyOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(new CopyCancelled('cancelled before the copy started'));
    // -n: the destination exists already (the plugin made it, at the right size).
    const args = ['convert', '-p', '-n', '-f', src.format, '-O', dst.format];
    if (o.targetIsZero) args.push('--target-is-zero');
    // Bytes per second, to keep a big copy from starving running VMs' disk I/O.
    const rate = process.env.XAPID_COPY_RATE_LIMIT;
    if (rate && /^\d+[kKmMgG]?$/.test(rate)) args.push('-r', rate);
    args.push(src.path, dst.path);
    const child = o.children.spawn(QEMU_IMG, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let cancelled = false;
    let pending = '';
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString('utf8');
      const parts = pending.split(/[\r\n]/);
      pending = parts.pop() ?? '';
      for (const p of parts) {
        const m = /\((\d+(?:\.\d+)?)\/100%\)/.exec(p);
        if (m) o.onProgress?.(Math.min(1, Number(m[1]) / 100));
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString('utf8');
    });
    const onAbort = () => {
      cancelled = true;
      Registry.killGroup(child);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => reject(new Error(`cannot run ${QEMU_IMG}: ${e.message}`)));
    child.once('close', (code, signal) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (cancelled) return reject(new CopyCancelled('the copy was cancelled'));
      if (code === 0) return resolve();
      reject(new Error(`${QEMU_IMG} convert failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}
