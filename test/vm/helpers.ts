// Shared by the VM tests: a daemon on the simulator with no delays, VM records that
// boot in the simulator, a file SR for disks and suspend images, and polling helpers.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDaemon, type DaemonOptions, type TestDaemon } from '../helpers/daemon.js';
import { connect, vmRecord, type Api } from '../helpers/api.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const NULL = 'OpaqueRef:NULL';

/** Flags for a quick, deterministic simulator: no delays, short clean-shutdown limit, no restart guards. */
export const SIM_ARGS = ['--driver', 'sim', '--sim-delay-scale', '0', '--network-mode', 'none', '--shutdown-timeout', '2', '--crash-guard', '0', '--reboot-guard', '0'];

export interface VmDaemon {
  d: TestDaemon;
  api: Api;
  host: string;
  pool: string;
}

export async function vmDaemon(opts: DaemonOptions = {}): Promise<VmDaemon> {
  const d = await startDaemon({ ...opts, args: [...SIM_ARGS, ...(opts.args ?? [])] });
  return { d, ...(await reconnect(d)) };
}

export async function reconnect(d: TestDaemon): Promise<{ api: Api; host: string; pool: string }> {
  const api = await connect(d.url);
  const host = (await api.call('host.get_all'))[0] as string;
  const pool = (await api.call('pool.get_all'))[0] as string;
  return { api, host, pool };
}

export function tmp(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A PV VM that boots a kernel from dom0 directly (no bootloader, no disk needed). */
export function pvRecord(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...vmRecord(name), PV_bootloader: '', PV_kernel: '/boot/vmlinuz-sim', PV_args: 'console=hvc0', ...extra };
}

export function hvmRecord(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...vmRecord(name), PV_bootloader: '', HVM_boot_policy: 'BIOS order', HVM_boot_params: { order: 'dc' }, ...extra };
}

/** A file SR in a temp dir, made the pool's default, suspend and crash dump SR. */
export async function fileSr(api: Api, host: string, pool: string): Promise<{ sr: string; dir: string }> {
  const dir = tmp('xapid-vm-sr-');
  const sr = await api.call('SR.create', host, { location: dir }, 0, 'VM test SR', '', 'file', '', false, {});
  await api.call('pool.set_default_SR', pool, sr);
  await api.call('pool.set_suspend_image_SR', pool, sr);
  await api.call('pool.set_crash_dump_SR', pool, sr);
  return { sr, dir };
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, tries = 400): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Waits until the VM is in `state` (and, if given, its domid differs from `notDomid`). */
export function waitPower(api: Api, vm: string, state: string, notDomid?: number): Promise<Record<string, any>> {
  return waitFor(async () => {
    const r = await api.call('VM.get_record', vm);
    return r.power_state === state && (notDomid === undefined || r.domid !== notDomid) && Object.keys(r.current_operations).length === 0 ? r : undefined;
  }, `VM ${vm} to be ${state}`);
}

/** Waits for an Async task to finish; returns its record. */
export function waitTask(api: Api, task: string): Promise<Record<string, any>> {
  return waitFor(async () => {
    const t = await api.call('task.get_record', task);
    return t.status === 'pending' ? undefined : t;
  }, `task ${task}`);
}
