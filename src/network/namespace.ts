// Network modes (and which one a start gets), and the namespace xapid works in when it
// does not manage a real Xen host: its name (from the state directory), creation and
// removal, and the stand-in NICs that play the part of physical ones inside it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { IpError, IpRunner } from './ip.js';
import { ALIAS } from './host.js';
import { IFNAME_MAX } from './names.js';

/**
 * - host: changes the host's own interfaces (a Xen host xapid manages);
 * - namespace: every change happens inside a network namespace (the simulator's default);
 * - none: network changes are kept in the database only.
 */
export type NetworkMode = 'host' | 'namespace' | 'none';
export const NETWORK_MODES: readonly NetworkMode[] = ['host', 'namespace', 'none'];

/** The host's networking is touched only for a real Xen host driven by the xl driver. */
export function defaultNetworkMode(driver?: string): NetworkMode {
  return driver === 'xl' ? 'host' : 'namespace';
}

/** Where a start works: the mode it gets, the namespace (whether xapid owns it, and
 * whether it was made just now). A mode that cannot be had falls back to none. */
export interface ModeChoice {
  mode: NetworkMode;
  netns?: string;
  owns: boolean;
  fresh: boolean;
}

export async function chooseMode(o: { mode: NetworkMode; netns?: string; stateDir: string; timeoutMs: number }, log: Logger): Promise<ModeChoice> {
  if (o.mode === 'namespace') {
    const netns = o.netns ?? namespaceName(o.stateDir);
    if (o.netns) {
      if (!namespaceExists(netns)) throw new Error(`the network namespace ${netns} given with --netns does not exist`);
      log.info({ netns }, 'network changes happen in the given network namespace');
      return { mode: 'namespace', netns, owns: false, fresh: false };
    }
    if (namespaceExists(netns)) {
      log.info({ netns }, 'network namespace found again: network changes happen inside it');
      return { mode: 'namespace', netns, owns: true, fresh: false };
    }
    try {
      await IpRunner.netnsAdd(netns, o.timeoutMs);
      log.info({ netns }, 'network namespace created: network changes happen inside it, the host\'s interfaces are not touched');
      return { mode: 'namespace', netns, owns: true, fresh: true };
    } catch (e) {
      log.warn({ err: e instanceof IpError ? e.detail : String(e), netns }, 'could not create a network namespace (no rights?): network changes are kept in the database only');
      return { mode: 'none', owns: false, fresh: false };
    }
  }
  if (o.mode === 'host') {
    try {
      await new IpRunner({ timeoutMs: o.timeoutMs }).links();
      log.warn('network mode host: xapid changes this machine\'s own interfaces');
      return { mode: 'host', owns: false, fresh: false };
    } catch (e) {
      log.error({ err: e instanceof IpError ? e.detail : String(e) }, 'cannot use iproute2 on this host: network changes are kept in the database only');
      return { mode: 'none', owns: false, fresh: false };
    }
  }
  log.info('network mode none: network changes are kept in the database only');
  return { mode: 'none', owns: false, fresh: false };
}

/** The namespace a daemon owns: fixed for its state directory, so a restart finds it. */
export function namespaceName(stateDir: string): string {
  let dir = path.resolve(stateDir);
  try {
    dir = realpathSync(dir);
  } catch {
    /* not there yet: the resolved path will do */
  }
  return `xapid-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;
}

export function namespaceExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`) || existsSync(`/var/run/netns/${name}`);
}

/** The mark a daemon puts on its namespace's `lo` (ifalias): whose namespace it is now. */
export function ownerMark(pid = process.pid): string {
  return `xapid:owner:${pid}`;
}

// Waits for the daemon's end of the pipe to close (however the daemon ends, SIGKILL
// included), then deletes the namespace if the daemon's mark is still on it: a daemon
// started since on the same state directory has put its own mark there and keeps it.
const GUARD_SCRIPT = [
  "trap '' INT TERM HUP",
  'read _',
  'mark=$(ip -n "$1" -o link show dev lo 2>/dev/null)',
  // (the alias ends the line, so owner:12 does not match owner:123)
  'case "$mark" in *"alias $2") ip netns delete "$1" 2>/dev/null ;; esac',
].join('\n');

/** Starts the process that removes the namespace when this daemon is gone. It runs in
 * its own process group (terminal signals do not reach it) and exits by itself. */
export function guardNamespace(name: string): ChildProcess {
  const guard = spawn('sh', ['-c', GUARD_SCRIPT, 'xapid-netns-guard', name, ownerMark()], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  guard.unref();
  (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return guard;
}

/** The name of the veth end paired with a stand-in NIC (stays in the namespace, up, so
 * that the NIC has a carrier). */
export function wireName(nic: string): string {
  const n = `${nic}-w`;
  return n.length <= IFNAME_MAX ? n : `w${createHash('sha256').update(nic).digest('hex').slice(0, IFNAME_MAX - 1)}`;
}

/** Creates stand-in NICs: dummy devices where the kernel has them, else one end of a
 * veth pair each. They carry the alias that makes discovery treat them as physical. */
export async function createStandIns(ip: IpRunner, nics: Array<{ device: string; mac?: string }>, also: string[][] = []): Promise<void> {
  const attrs = (n: { mac?: string }) => ['alias', ALIAS.nic, ...(n.mac ? ['address', n.mac] : [])];
  // Dummies need the dummy module, loaded or loadable.
  if (nics.length && (existsSync('/sys/module/dummy') || existsSync(`/lib/modules/${os.release()}`))) {
    try {
      await ip.batch([...nics.flatMap((n) => [
        ['link', 'add', 'name', n.device, 'type', 'dummy'],
        ['link', 'set', 'dev', n.device, ...attrs(n)],
      ]), ...also]);
      return;
    } catch (e) {
      // Only a kernel without dummy devices makes the first line fail; nothing was made.
      if (!(e instanceof IpError) || e.kind !== 'unsupported') throw e;
    }
  }
  await ip.batch([...also, ...nics.flatMap((n) => [
    ['link', 'add', 'name', n.device, 'type', 'veth', 'peer', 'name', wireName(n.device)],
    ['link', 'set', 'dev', wireName(n.device), 'alias', ALIAS.wire, 'up'],
    ['link', 'set', 'dev', n.device, ...attrs(n)],
  ])]);
}
