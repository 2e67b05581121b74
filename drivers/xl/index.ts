// The xl driver: real Xen through the `xl` command line and the xenstore tools.
// Domains are created from a generated config file (config.ts) with every on_* action
// set to preserve; the change feed comes from xenstore's @introduceDomain and
// @releaseDomain watches plus a periodic `xl list -v`, so shutdowns, reboots and
// crashes are seen and left for xapid to act on.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import {
  DriverError, type ConsoleStream, type DiskSpec, type DomainConfig, type DomainEvent, type DomainInfo,
  type Driver, type HostFacts, type NicSpec,
} from '../driver.js';
import { DomainFeed } from '../feed.js';
import { renderXlConfig, diskSpec, nicSpec, VIF_SCRIPT } from './config.js';
import { spawnRunner, type Runner } from './exec.js';
import { parseXenstoreLs, parseXlInfo, parseXlListLong, parseXlListVerbose, type ListedDomain } from './parse.js';

const MiB = 1024 * 1024;

/** A failed `xl create` or `xl restore` that says nothing more specific is a domain build failure. */
function asBuildError(e: unknown): unknown {
  if (e instanceof DriverError && (e.kind === 'failed' || e.kind === 'invalid')) return new DriverError('build', e.message, e.detail);
  return e;
}

export interface XlOptions {
  /** Where generated domain config files are written. */
  configDir: string;
  xl?: string;
  /** Directory of xenstore-read/-write/-ls/-rm/-watch (default: found on PATH). */
  xenstoreBin?: string;
  /** Ordinary commands (pause, list…), ms. */
  commandTimeoutMs?: number;
  /** create, restore, save, dump-core, ms. */
  buildTimeoutMs?: number;
  /** How often `xl list -v` is read when no watch fired, ms. */
  pollMs?: number;
  runner?: Runner;
  log?: (msg: string, detail?: Record<string, unknown>) => void;
  /** libxl's hotplug script for vifs: xapid's own by default, '' for xl's (xl.conf's vif.default.script). */
  vifScript?: string;
}

interface Details {
  hvm: boolean;
  maxMemoryBytes: number;
  maxVcpus: number;
}

/** xapid's own script where it was installed with the daemon, else xl's default (with a word in the log). */
function defaultVifScript(log: XlOptions['log']): string {
  if (/[,=\s]/.test(VIF_SCRIPT)) {
    log?.(`${VIF_SCRIPT} cannot be named in an xl vif spec (a comma, '=' or space in the path): vifs use xl's default hotplug script`);
    return '';
  }
  try {
    accessSync(VIF_SCRIPT, constants.X_OK);
    return VIF_SCRIPT;
  } catch {
    log?.(`${VIF_SCRIPT} is missing or not executable: vifs use xl's default hotplug script`);
    return '';
  }
}

export class XlDriver implements Driver {
  readonly name = 'xl' as const;
  private readonly run: Runner;
  private readonly xl: string;
  private readonly cmdMs: number;
  private readonly buildMs: number;
  private readonly vifScript: string;
  private readonly feed = new DomainFeed();
  private readonly watchers = new Set<ChildProcess>();
  private known = new Map<number, DomainInfo>();
  private readonly details = new Map<number, Details>();
  private poller?: NodeJS.Timeout;
  private scanning?: Promise<void>;
  private rescanAgain = false;
  private closed = false;

  constructor(private readonly opts: XlOptions) {
    this.run = opts.runner ?? spawnRunner;
    this.xl = opts.xl ?? 'xl';
    this.cmdMs = opts.commandTimeoutMs ?? 120_000;
    this.buildMs = opts.buildTimeoutMs ?? 300_000;
    this.vifScript = opts.vifScript ?? defaultVifScript(opts.log);
  }

  private xs(tool: string): string {
    return this.opts.xenstoreBin ? path.join(this.opts.xenstoreBin, tool) : tool;
  }

  private xlRun(args: string[], timeoutMs = this.cmdMs, input?: string) {
    return this.run(this.xl, args, { timeoutMs, input });
  }

  // ---- lifecycle ---------------------------------------------------------------------

  async open(): Promise<void> {
    mkdirSync(this.opts.configDir, { recursive: true, mode: 0o700 });
    await this.host(); // fails clearly when xl cannot reach Xen
    await this.rescan();
    for (const special of ['@introduceDomain', '@releaseDomain']) this.startWatch(special, () => this.scheduleRescan());
    const poll = () => {
      this.poller = setTimeout(() => {
        void this.rescan().finally(() => !this.closed && poll());
      }, this.opts.pollMs ?? 2000);
      this.poller.unref();
    };
    poll();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearTimeout(this.poller);
    for (const c of this.watchers) c.kill('SIGTERM');
    this.watchers.clear();
    await this.scanning;
  }

  /** A long-running xenstore-watch; each line it prints is a changed path. */
  private startWatch(p: string, onLine: (path: string) => void): () => void {
    const child = spawn(this.xs('xenstore-watch'), [p], { stdio: ['ignore', 'pipe', 'pipe'] });
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

  // ---- the change feed -----------------------------------------------------------------

  subscribe(listener: (e: DomainEvent) => void): () => void {
    return this.feed.subscribe(listener);
  }

  private scheduleRescan(): void {
    if (this.scanning) {
      this.rescanAgain = true;
      return;
    }
    void this.rescan();
  }

  /** Reads the domain list and reports what changed since the last reading. */
  rescan(): Promise<void> {
    if (this.scanning) {
      this.rescanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescanAgain = false;
          const now = await this.list();
          const next = new Map(now.map((d) => [d.domid, d]));
          for (const [domid, old] of this.known) {
            if (!next.has(domid)) {
              this.details.delete(domid);
              this.feed.emit({ kind: 'gone', domid, uuid: old.uuid });
            }
          }
          for (const d of now) {
            const old = this.known.get(d.domid);
            if (!old || old.state !== d.state || old.shutdownReason !== d.shutdownReason || old.memoryBytes !== d.memoryBytes || old.vcpus !== d.vcpus) {
              this.feed.emit({ kind: 'changed', info: d });
            }
          }
          this.known = next;
        } while (this.rescanAgain && !this.closed);
      } catch (e) {
        this.opts.log?.('reading the domain list failed', { err: (e as Error).message });
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  // ---- reads -----------------------------------------------------------------------------

  async host(): Promise<HostFacts> {
    const info = parseXlInfo((await this.xlRun(['info'])).stdout);
    const total = Number(info.total_memory);
    if (!Number.isFinite(total)) throw new DriverError('failed', 'xl info did not report total_memory', { command: 'xl info' });
    return {
      totalMemoryBytes: total * MiB,
      freeMemoryBytes: (Number(info.free_memory) || 0) * MiB,
      cpus: Number(info.nr_cpus) || 1,
      xenVersion: info.xen_version ?? '',
    };
  }

  private async detailsOf(domid: number): Promise<Details | undefined> {
    const cached = this.details.get(domid);
    if (cached) return cached;
    try {
      const [d] = parseXlListLong((await this.xlRun(['list', '-l', String(domid)])).stdout);
      if (!d) return undefined;
      const type = d.config.c_info?.type ?? d.config.b_info?.type ?? 'pv';
      const det: Details = {
        hvm: type === 'hvm',
        maxMemoryBytes: (d.config.b_info?.max_memkb ?? 0) * 1024,
        maxVcpus: d.config.b_info?.max_vcpus ?? 0,
      };
      this.details.set(domid, det);
      return det;
    } catch {
      return undefined; // a domain not started by xl has no stored config: the short list is enough
    }
  }

  private async toInfo(l: ListedDomain): Promise<DomainInfo> {
    const det = await this.detailsOf(l.domid);
    return {
      domid: l.domid, uuid: l.uuid, name: l.name, state: l.state, shutdownReason: l.shutdownReason,
      memoryBytes: l.memoryBytes, maxMemoryBytes: Math.max(det?.maxMemoryBytes ?? 0, l.memoryBytes),
      vcpus: l.vcpus, maxVcpus: Math.max(det?.maxVcpus ?? 0, l.vcpus), vcpuCpu: {}, cpuTimeSec: l.cpuTimeSec, hvm: det?.hvm ?? false,
    };
  }

  async list(): Promise<DomainInfo[]> {
    const listed = parseXlListVerbose((await this.xlRun(['list', '-v'])).stdout).filter((d) => d.domid !== 0);
    return Promise.all(listed.map((l) => this.toInfo(l)));
  }

  async info(domid: number): Promise<DomainInfo | undefined> {
    return (await this.list()).find((d) => d.domid === domid);
  }

  private async domidOf(name: string, command: string): Promise<number> {
    const out = (await this.xlRun(['domid', name])).stdout.trim();
    const id = Number(out);
    if (!/^\d+$/.test(out)) throw new DriverError('failed', `xl domid ${name} printed "${out}"`, { command });
    return id;
  }

  private async mustInfo(domid: number, command: string): Promise<DomainInfo> {
    const i = await this.info(domid);
    if (!i) throw new DriverError('no-such-domain', `domain ${domid} disappeared right after ${command}`, { command });
    return i;
  }

  // ---- building and destroying ---------------------------------------------------------------

  private writeConfig(cfg: DomainConfig): string {
    const file = path.join(this.opts.configDir, `${cfg.uuid}.cfg`);
    writeFileSync(file, renderXlConfig(cfg, this.vifScript), { mode: 0o600 });
    return file;
  }

  async create(cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo> {
    const file = this.writeConfig(cfg);
    const args = ['create', ...(opts.paused ? ['-p'] : []), file];
    try {
      await this.xlRun(args, this.buildMs);
    } catch (e) {
      if (e instanceof DriverError && e.kind === 'exists') {
        // Another domain has this name: say which, and leave it alone.
        const other = await this.xlRun(['domid', cfg.name]).then((r) => Number(r.stdout.trim()), () => undefined);
        throw new DriverError('exists', e.message, { ...e.detail, domid: other });
      }
      // A failed create can leave a half-built domain behind: remove it.
      await this.xlRun(['destroy', cfg.name]).catch(() => undefined);
      throw asBuildError(e);
    }
    const domid = await this.domidOf(cfg.name, `xl ${args.join(' ')}`);
    void this.rescan();
    return this.mustInfo(domid, 'xl create');
  }

  async destroy(domid: number): Promise<void> {
    await this.xlRun(['destroy', String(domid)]);
    void this.rescan();
  }

  async requestShutdown(domid: number, reason: 'poweroff' | 'reboot', ackTimeoutMs: number): Promise<void> {
    const cmd = reason === 'reboot' ? 'reboot' : 'shutdown';
    await this.xlRun([cmd, String(domid)]);
    // The guest's kernel acknowledges by clearing control/shutdown.
    const key = `/local/domain/${domid}/control/shutdown`;
    const deadline = Date.now() + ackTimeoutMs;
    for (;;) {
      const v = await this.xenstoreRead(key).catch(() => undefined);
      if (!v) return;
      const i = await this.info(domid);
      if (!i || i.state !== 'running') return;
      if (Date.now() > deadline) {
        throw new DriverError('ack-timeout', `domain ${domid} did not acknowledge "${v}" within ${ackTimeoutMs / 1000}s`, { command: `xl ${cmd} ${domid}`, timeoutSec: ackTimeoutMs / 1000 });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async pause(domid: number): Promise<void> {
    await this.xlRun(['pause', String(domid)]);
    void this.rescan();
  }

  async unpause(domid: number): Promise<void> {
    await this.xlRun(['unpause', String(domid)]);
    void this.rescan();
  }

  async save(domid: number, file: string, timeoutMs: number): Promise<void> {
    await this.xlRun(['save', String(domid), file], timeoutMs);
    void this.rescan();
  }

  async restore(file: string, cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo> {
    const cfgFile = this.writeConfig(cfg);
    const args = ['restore', ...(opts.paused ? ['-p'] : []), cfgFile, file];
    try {
      await this.xlRun(args, this.buildMs);
    } catch (e) {
      await this.xlRun(['destroy', cfg.name]).catch(() => undefined);
      throw asBuildError(e);
    }
    const domid = await this.domidOf(cfg.name, `xl ${args.join(' ')}`);
    void this.rescan();
    return this.mustInfo(domid, 'xl restore');
  }

  async dumpCore(domid: number, file: string): Promise<void> {
    await this.xlRun(['dump-core', String(domid), file], this.buildMs);
  }

  // ---- live changes ----------------------------------------------------------------------------

  async setVcpus(domid: number, n: number): Promise<void> {
    await this.xlRun(['vcpu-set', String(domid), String(n)]);
    void this.rescan();
  }

  async setMemoryTarget(domid: number, bytes: number): Promise<void> {
    await this.xlRun(['mem-set', String(domid), `${Math.floor(bytes / 1024)}k`]);
    void this.rescan();
  }

  async setShadowMemory(domid: number, _mib: number): Promise<void> {
    throw new DriverError('unsupported', 'xl has no command to change the shadow memory of a running domain', { command: `shadow ${domid}` });
  }

  async setVcpuParams(domid: number, p: { weight?: number; cap?: number; mask?: string }): Promise<void> {
    const sched: string[] = [];
    if (p.weight !== undefined) sched.push('-w', String(p.weight));
    if (p.cap !== undefined) sched.push('-c', String(p.cap));
    if (sched.length) await this.xlRun(['sched-credit', '-d', String(domid), ...sched]);
    if (p.mask !== undefined) await this.xlRun(['vcpu-pin', String(domid), 'all', p.mask]);
  }

  async sysrq(domid: number, key: string): Promise<void> {
    await this.xlRun(['sysrq', String(domid), key]);
  }

  async trigger(domid: number, trigger: string, vcpu?: number): Promise<void> {
    await this.xlRun(['trigger', String(domid), trigger, ...(vcpu === undefined ? [] : [String(vcpu)])]);
  }

  // ---- devices -----------------------------------------------------------------------------------

  async attachDisk(domid: number, disk: DiskSpec): Promise<void> {
    await this.xlRun(['block-attach', String(domid), diskSpec(disk)]);
  }

  async detachDisk(domid: number, vdev: string, force: boolean): Promise<void> {
    await this.xlRun(['block-detach', ...(force ? ['--force'] : []), String(domid), vdev]);
  }

  async attachNic(domid: number, nic: NicSpec): Promise<void> {
    await this.xlRun(['network-attach', String(domid), ...nicSpec(nic, this.vifScript).split(',')]);
  }

  async detachNic(domid: number, devid: number, _force: boolean): Promise<void> {
    await this.xlRun(['network-detach', String(domid), String(devid)]); // xl has no forced network-detach
  }

  async changeCd(domid: number, vdev: string, disk: DiskSpec | undefined): Promise<void> {
    if (disk) await this.xlRun(['cd-insert', String(domid), vdev, disk.path]);
    else await this.xlRun(['cd-eject', String(domid), vdev]);
  }

  // ---- xenstore ------------------------------------------------------------------------------------

  async xenstoreRead(p: string): Promise<string | undefined> {
    try {
      return (await this.run(this.xs('xenstore-read'), [p], { timeoutMs: this.cmdMs })).stdout.replace(/\n$/, '');
    } catch (e) {
      if (e instanceof DriverError && e.kind !== 'timeout' && /no such file|enoent|could not read/i.test(e.detail.stderr ?? '')) return undefined;
      throw e;
    }
  }

  async xenstoreWrite(p: string, value: string): Promise<void> {
    await this.run(this.xs('xenstore-write'), [p, value], { timeoutMs: this.cmdMs });
  }

  async xenstoreList(p: string): Promise<Record<string, string>> {
    try {
      return parseXenstoreLs((await this.run(this.xs('xenstore-ls'), ['-f', p], { timeoutMs: this.cmdMs })).stdout, p);
    } catch (e) {
      if (e instanceof DriverError && /no such file|enoent/i.test(e.detail.stderr ?? '')) return {};
      throw e;
    }
  }

  async xenstoreRemove(p: string): Promise<void> {
    await this.run(this.xs('xenstore-rm'), [p], { timeoutMs: this.cmdMs });
  }

  xenstoreWatch(p: string, listener: (path: string) => void): () => void {
    return this.startWatch(p, listener);
  }

  // ---- console ---------------------------------------------------------------------------------------

  async console(domid: number): Promise<ConsoleStream> {
    const child = spawn(this.xl, ['console', '-t', 'pv', String(domid)], { stdio: ['pipe', 'pipe', 'pipe'] });
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
}
