// Shared by the storage tests: a daemon without network side effects, a JSON-RPC
// client, and qemu-io/qemu-img helpers that write and check real bytes in images.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDaemon, type DaemonOptions, type TestDaemon } from '../helpers/daemon.js';
import { connect, type Api } from '../helpers/api.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function haveTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export const QEMU_MISSING = haveTool('qemu-img') && haveTool('qemu-io') ? false : 'qemu-img/qemu-io (Debian qemu-utils) are not installed';

export function tmp(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function storageDaemon(opts: DaemonOptions = {}): Promise<{ d: TestDaemon; api: Api; host: string }> {
  const d = await startDaemon({ ...opts, args: ['--network-mode', 'none', ...(opts.args ?? [])] });
  const api = await connect(d.url);
  const host = (await api.call('host.get_all'))[0] as string;
  return { d, api, host };
}

/** Reconnects after a restart (sessions do not survive one). */
export async function reconnect(d: TestDaemon): Promise<{ api: Api; host: string }> {
  const api = await connect(d.url);
  return { api, host: (await api.call('host.get_all'))[0] as string };
}

export function fileSr(api: Api, host: string, dir: string, name = 'file SR'): Promise<string> {
  return api.call('SR.create', host, { location: dir }, 0, name, '', 'file', '', false, {});
}

export function vdiArgs(sr: string, size: number, name = 'disk'): Record<string, unknown> {
  return { name_label: name, name_description: '', SR: sr, virtual_size: size, type: 'user', sharable: false, read_only: false, other_config: {} };
}

/** Writes `len` bytes of `pattern` at `offset` into a qcow2 (or raw) image. */
export function writePattern(file: string, pattern: number, offset: number, len: number, format = 'qcow2'): void {
  execFileSync('qemu-io', ['-f', format, '-c', `write -P ${pattern} ${offset} ${len}`, file], { stdio: 'pipe' });
}

/** True when the image holds `pattern` over the whole range. */
export function hasPattern(file: string, pattern: number, offset: number, len: number, format = 'qcow2'): boolean {
  return spawnSync('qemu-io', ['-r', '-f', format, '-c', `read -P ${pattern} ${offset} ${len}`, file], { stdio: 'pipe' }).status === 0;
}

/** True when two images have the same contents (qemu-img compare). */
export function sameContents(a: string, b: string, fa = 'qcow2', fb = 'qcow2'): boolean {
  return differences(a, b, fa, fb) === '';
}

/** '' when the two images read the same, else what qemu-img compare says about them. */
export function differences(a: string, b: string, fa = 'qcow2', fb = 'qcow2'): string {
  const r = spawnSync('qemu-img', ['compare', '-f', fa, '-F', fb, a, b], { encoding: 'utf8' });
  return r.status === 0 ? '' : `exit ${r.status}: ${r.stdout}${r.stderr}`.trim();
}

/** The directory's entries with sizes, to prove that a refused call changed nothing. */
export function listing(dir: string): string[] {
  return readdirSync(dir).sort().map((f) => {
    const st = statSync(path.join(dir, f));
    return `${f} ${st.size} ${st.mtimeMs}`;
  });
}

/** Bytes allocated by the files of a directory. */
export function allocatedIn(dir: string): number {
  return readdirSync(dir).reduce((s, f) => s + statSync(path.join(dir, f)).blocks * 512, 0);
}

/** The VDI images of a file SR's directory (hidden bases and temporary files left out). */
export function images(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.qcow2') && !f.startsWith('.')).sort();
}
