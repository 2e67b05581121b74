// DHCP for PIFs in DHCP mode, as xapi's networkd runs dhclient: one client per bridge,
// busybox's udhcpc (Debian's busybox package), with an event script xapid writes into
// its state directory. The script itself puts the lease on the bridge (so renewals go
// on while xapid is down) and writes it to <dir>/<bridge>.lease, which xapid watches.
//
// Lifetimes: without `persistent` (namespace mode) a client dies with xapid (a
// parent-death signal set by util-linux's setpriv, SIGKILL of xapid included) and
// releases its lease. With `persistent` (host mode) it is detached and outlives xapid,
// as dhclient outlives xapi; the next start finds it (its script path is in
// /proc/PID/cmdline), adopts it if it does what is wanted, replaces it if not, and stops
// it if its PIF no longer wants DHCP: never two clients on one bridge.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { IpError } from './ip.js';
import { EVENT_SCRIPT, UDHCPC_ARGS, findClients, isClient, parseLease, running, type Found, type Lease } from './udhcpc.js';

/** How waiting for a first lease ended. */
export type LeaseWait = 'bound' | 'failed' | 'exited' | 'timeout';

export interface DhcpOptions {
  /** Where the event script, and the lease files it writes, live. */
  dir: string;
  /** Run the clients inside this network namespace. */
  netns?: string;
  /** Clients outlive xapid and are adopted at the next start (host mode). */
  persistent: boolean;
  log: Logger;
  /** Called when a bridge's lease changes. */
  onChange: (bridge: string) => void;
  /** The busybox binary (default: found in PATH). */
  busybox?: string;
}

/** How long a client may take to release its lease and exit before it is killed. */
const STOP_GRACE_MS = 5000;

/** A program in PATH (or the usual sbin directories), as execvp would find it. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].filter(Boolean);
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Client {
  pid: number;
  defaultRoute: boolean;
  /** Set for a client this xapid started; an adopted one is watched through /proc. */
  child?: ChildProcess;
  exited?: Promise<void>;
  stopping?: boolean;
  /** The client's last output lines (namespace mode), for the log when it ends. */
  output: string[];
}

export class DhcpClients {
  readonly script: string;
  private readonly clients = new Map<string, Client>();
  private readonly leases = new Map<string, Lease>();
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Clients of an earlier run, until adopted or stopped. */
  private orphans = new Map<string, Found[]>();
  private watcher?: FSWatcher;

  private constructor(private readonly o: DhcpOptions) {
    this.script = path.join(o.dir, 'udhcpc-event');
  }

  /** Writes the event script, starts watching lease files, and finds clients of an
   * earlier run: kept for adoption when persistent, else stopped. */
  static async open(o: DhcpOptions): Promise<DhcpClients> {
    const d = new DhcpClients(o);
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const tmp = `${d.script}.new`;
    writeFileSync(tmp, EVENT_SCRIPT, { mode: 0o755 });
    renameSync(tmp, d.script);
    try {
      d.watcher = watch(o.dir, { persistent: false }, (_event, name) => {
        const file = String(name ?? '');
        if (file.endsWith('.lease') && !file.startsWith('.')) d.reread(file.slice(0, -'.lease'.length));
      });
      d.watcher.on('error', (err) => o.log.warn({ err: err.message }, 'watching DHCP lease files failed: leases are read at each metrics refresh only'));
    } catch (e) {
      o.log.warn({ err: (e as Error).message }, 'cannot watch DHCP lease files: leases are read at each metrics refresh only');
    }
    for (const f of findClients(d.script)) {
      const list = d.orphans.get(f.bridge) ?? [];
      list.push(f);
      d.orphans.set(f.bridge, list);
    }
    if (!o.persistent) await d.dropOrphans();
    return d;
  }

  /** The lease of the client on `bridge`, if it runs and said anything yet. */
  lease(bridge: string): Lease | undefined {
    return this.clients.has(bridge) ? this.leases.get(bridge) : undefined;
  }

  has(bridge: string): boolean {
    return this.clients.has(bridge);
  }

  /** Makes sure one client runs on `bridge` with these settings: the running one, one
   * of an earlier run (persistent), or a new one. Throws an IpError ('no-tool') when
   * busybox or setpriv is missing. */
  async start(bridge: string, opts: { defaultRoute: boolean }): Promise<void> {
    let cur = this.clients.get(bridge);
    // An adopted client is not our child: its end shows only in /proc.
    if (cur && !cur.child && !isClient(cur.pid, this.script, bridge)) {
      this.o.log.warn({ bridge, pid: cur.pid }, 'the adopted DHCP client is gone: starting another');
      this.clients.delete(bridge);
      cur = undefined;
    }
    if (cur && cur.defaultRoute === opts.defaultRoute) return;
    if (cur) await this.stop(bridge);
    const found = this.orphans.get(bridge) ?? [];
    this.orphans.delete(bridge);
    const keep = this.o.persistent ? found.find((f) => f.defaultRoute === opts.defaultRoute && isClient(f.pid, this.script, bridge)) : undefined;
    await Promise.all(found.filter((f) => f !== keep).map((f) => this.kill({ pid: f.pid, defaultRoute: f.defaultRoute, output: [] }, bridge)));
    if (keep) {
      this.clients.set(bridge, { pid: keep.pid, defaultRoute: keep.defaultRoute, output: [] });
      this.o.log.info({ bridge, pid: keep.pid }, 'DHCP client of an earlier run adopted');
      this.reread(bridge);
      return;
    }
    this.spawn(bridge, opts.defaultRoute);
  }

  /** The programs a client needs; an IpError ('no-tool') names a missing one. */
  tools(): { busybox: string; setpriv?: string } {
    const busybox = this.o.busybox ?? findTool('busybox');
    if (!busybox || !existsSync(busybox)) throw new IpError([this.o.busybox ?? 'busybox', 'udhcpc'], 'no-tool', 'no DHCP client: busybox is not installed (Debian package busybox)');
    if (this.o.persistent) return { busybox };
    const setpriv = findTool('setpriv');
    if (!setpriv) throw new IpError(['setpriv'], 'no-tool', 'no DHCP client: setpriv is not installed (Debian package util-linux)');
    return { busybox, setpriv };
  }

  private spawn(bridge: string, defaultRoute: boolean): void {
    const { busybox, setpriv } = this.tools();
    let cmd = [busybox, 'udhcpc', ...UDHCPC_ARGS, '-i', bridge, '-s', this.script, ...(this.o.persistent ? ['-S'] : [])];
    // Without persistence the client gets SIGTERM (and releases its lease) when xapid ends.
    if (setpriv) cmd = [setpriv, '--pdeathsig', 'SIGTERM', '--', ...cmd];
    // (`ip netns exec` execs the command: the PID is the client's.)
    if (this.o.netns) cmd = [findTool('ip') ?? 'ip', 'netns', 'exec', this.o.netns, ...cmd];
    rmSync(this.leaseFile(bridge), { force: true });
    this.leases.delete(bridge);
    const env = {
      PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin:/sbin:/bin`, LC_ALL: 'C',
      XAPID_DHCP_DIR: this.o.dir, XAPID_DEFAULT_ROUTE: defaultRoute ? '1' : '0',
    };
    // Its own session: a Ctrl-C at xapid's terminal is not meant for it.
    const child = spawn(cmd[0]!, cmd.slice(1), { env, detached: true, stdio: this.o.persistent ? 'ignore' : ['ignore', 'pipe', 'pipe'] });
    const c: Client = { pid: child.pid ?? -1, defaultRoute, child, output: [] };
    c.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.ended(bridge, c, code, signal);
        resolve();
      });
      child.once('error', (err) => {
        c.output.push(err.message);
        if (child.pid === undefined) {
          this.ended(bridge, c, null, null);
          resolve();
        }
      });
    });
    for (const s of [child.stdout, child.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (text: string) => {
        for (const line of text.split('\n').filter(Boolean)) {
          this.o.log.debug({ bridge, line }, 'udhcpc');
          c.output.push(line);
          if (c.output.length > 5) c.output.shift();
        }
      });
    }
    if (this.o.persistent) child.unref();
    this.clients.set(bridge, c);
    this.o.log.info({ bridge, pid: c.pid, netns: this.o.netns, persistent: this.o.persistent }, 'DHCP client started');
  }

  /** A client ended by itself: logged, and the bridge has no DHCP client until its PIF is
   * plugged or reconfigured again (or xapid restarts). */
  private ended(bridge: string, c: Client, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.clients.get(bridge) !== c) return;
    this.clients.delete(bridge);
    this.leases.delete(bridge);
    if (!c.stopping) this.o.log.error({ bridge, pid: c.pid, code, signal, output: c.output }, 'the DHCP client exited by itself: no DHCP on this bridge until its PIF is plugged or reconfigured again');
    this.wake(bridge);
  }

  /** Stops the client on `bridge` (and any of an earlier run): it releases its lease,
   * which takes the address off. True if one was running. */
  async stop(bridge: string): Promise<boolean> {
    const c = this.clients.get(bridge);
    const found = this.orphans.get(bridge) ?? [];
    this.orphans.delete(bridge);
    await Promise.all(found.map((f) => this.kill({ pid: f.pid, defaultRoute: f.defaultRoute, output: [] }, bridge)));
    if (!c) return found.length > 0;
    await this.kill(c, bridge);
    if (this.clients.get(bridge) === c) this.clients.delete(bridge);
    this.leases.delete(bridge);
    rmSync(this.leaseFile(bridge), { force: true });
    this.wake(bridge);
    this.o.log.info({ bridge, pid: c.pid }, 'DHCP client stopped');
    return true;
  }

  private async kill(c: Client, bridge: string): Promise<void> {
    c.stopping = true;
    const signal = (sig: NodeJS.Signals) => {
      // (Never kill(-1, …): a child that could not be spawned has no PID.)
      if (c.pid <= 0) return;
      // A client of ours, or (adopted) a PID that still is one.
      if (c.child ? c.child.exitCode === null && c.child.signalCode === null : isClient(c.pid, this.script, bridge)) {
        try {
          process.kill(c.pid, sig);
        } catch {
          /* gone meanwhile */
        }
      }
    };
    const gone = async (ms: number) => {
      if (c.exited) {
        let timer: NodeJS.Timeout | undefined;
        const ok = await Promise.race([c.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
        clearTimeout(timer);
        return ok;
      }
      for (let waited = 0; waited < ms; waited += 50) {
        if (!running(c.pid)) return true;
        await sleep(50);
      }
      return !running(c.pid);
    };
    signal('SIGTERM');
    if (await gone(STOP_GRACE_MS)) return;
    this.o.log.warn({ bridge, pid: c.pid }, 'the DHCP client did not exit on SIGTERM: killed');
    signal('SIGKILL');
    await gone(STOP_GRACE_MS);
  }

  /** Stops every client (namespace mode, at daemon stop). */
  async stopAll(): Promise<void> {
    const bridges = new Set([...this.clients.keys(), ...this.orphans.keys()]);
    await Promise.all([...bridges].map((b) => this.stop(b)));
  }

  /** Stops the clients of an earlier run that nothing adopted. */
  async dropOrphans(): Promise<void> {
    const list = [...this.orphans.entries()];
    this.orphans.clear();
    for (const [bridge, found] of list) {
      for (const f of found) {
        this.o.log.info({ bridge, pid: f.pid }, 'stopping a DHCP client of an earlier run that no PIF wants');
        await this.kill({ pid: f.pid, defaultRoute: f.defaultRoute, output: [] }, bridge);
      }
    }
  }

  /** Stops watching; running clients are left as they are (host mode: they keep the
   * leases going until the next start adopts them). */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Resolves once the client on `bridge` holds a lease, has gone through a round of
   * discovery without one, or has ended; or after `ms`. */
  waitForLease(bridge: string, ms: number): Promise<LeaseWait> {
    return new Promise((resolve) => {
      const listeners = this.waiters.get(bridge) ?? new Set();
      this.waiters.set(bridge, listeners);
      let timer: NodeJS.Timeout | undefined;
      const done = (how: LeaseWait) => {
        listeners.delete(check);
        if (timer) clearTimeout(timer);
        resolve(how);
      };
      const check = () => {
        if (!this.clients.has(bridge)) return done('exited');
        const state = this.leases.get(bridge)?.state;
        if (state === 'bound' || state === 'failed') done(state);
      };
      listeners.add(check);
      timer = setTimeout(() => done('timeout'), ms);
      check();
    });
  }

  private wake(bridge: string): void {
    for (const f of [...(this.waiters.get(bridge) ?? [])]) f();
  }

  private leaseFile(bridge: string): string {
    return path.join(this.o.dir, `${bridge}.lease`);
  }

  /** Reads every running client's lease file again (a backstop for the watcher). */
  rereadAll(): void {
    for (const bridge of this.clients.keys()) this.reread(bridge);
  }

  private reread(bridge: string): void {
    const c = this.clients.get(bridge);
    if (!c) return;
    let text: string;
    try {
      text = readFileSync(this.leaseFile(bridge), 'utf8');
    } catch {
      return;
    }
    const next = parseLease(text);
    if (!next) return;
    const prev = this.leases.get(bridge);
    this.leases.set(bridge, next);
    const same = prev && prev.state === next.state && prev.ip === next.ip && prev.prefixlen === next.prefixlen && prev.router === next.router && prev.dns.join() === next.dns.join();
    if (!same) {
      const log = this.o.log;
      if (next.state === 'bound') log.info({ bridge, ip: `${next.ip}/${next.prefixlen}`, router: next.router, dns: next.dns, seconds: next.seconds, server: next.server }, 'DHCP lease obtained');
      else if (prev?.state === 'bound' && !c.stopping) log.warn({ bridge }, 'DHCP lease lost: the client keeps asking');
      else if (next.state === 'failed') log.warn({ bridge }, 'no DHCP server answered yet: the client keeps asking');
      this.o.onChange(bridge);
    }
    this.wake(bridge);
  }
}
