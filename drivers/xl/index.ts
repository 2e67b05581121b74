// The xl driver: real Xen through the `xl` command line and the xenstore tools.
// Domains are created from a generated config file (config.ts) with every on_* action
// set to preserve; the change feed comes from xenstore's @introduceDomain and
// @releaseDomain watches plus a periodic `xl list -v`, so shutdowns, reboots and
// crashes are seen and left for xapid to act on.
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  DriverError, type ConsoleStream, type DiskSpec, type DomainConfig, type DomainEvent, type DomainInfo,
  type Driver, type HostFacts, type NicSpec,
} from '../driver.js';
import { DomainFeed } from '../feed.js';
import { openConsole } from './console.js';
import { renderXlConfig, diskSpec, nicSpec, VIF_SCRIPT } from './config.js';
import { spawnRunner, type Runner } from './exec.js';
import { parseXlInfo, parseXlListLong, parseXlListVerbose, type ListedDomain } from './parse.js';
import { XenstoreTools } from './xenstore.js';

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
  private readonly xenstore: XenstoreTools;
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
    this.xenstore = new XenstoreTools({ bin: opts.xenstoreBin, run: this.run, timeoutMs: this.cmdMs, log: opts.log });
  }

  private xlRun(args: string[], timeoutMs = this.cmdMs, input?: string) {
    return this.run(this.xl, args, { timeoutMs, input });
  }

  // ---- lifecycle ---------------------------------------------------------------------

  async open(): Promise<void> {
    mkdirSync(this.opts.configDir, { recursive: true, mode: 0o700 });
    await this.host(); // fails clearly when xl cannot reach Xen
    await this.rescan();
    for (const special of ['@introduceDomain', '@releaseDomain']) this.xenstore.watch(special, () => this.scheduleRescan());
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
    this.xenstore.close();
    await this.scanning;
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
      const v = await this.xenstore.read(key).catch(() => undefined);
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

  // ---- xenstore (xenstore.ts) ----------------------------------------------------------------------

  xenstoreRead(p: string): Promise<string | undefined> {
    return this.xenstore.read(p);
  }

  xenstoreWrite(p: string, value: string): Promise<void> {
    return this.xenstore.write(p, value);
  }

  xenstoreList(p: string): Promise<Record<string, string>> {
    return this.xenstore.list(p);
  }

  xenstoreRemove(p: string): Promise<void> {
    return this.xenstore.remove(p);
  }

  xenstoreWatch(p: string, listener: (path: string) => void): () => void {
    return this.xenstore.watch(p, listener);
  }

  // ---- console (console.ts) --------------------------------------------------------------------------

  console(domid: number): Promise<ConsoleStream> {
    return openConsole(this.xl, domid);
  }
}
