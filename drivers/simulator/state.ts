// The simulator's state: the domain table and its xenstore. Both survive the daemon (a
// hypervisor outlives its toolstack): they are kept in the state file and read back at
// open.
import os from 'node:os';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { DriverError, type DiskSpec, type DomainInfo, type NicSpec, type ShutdownReason, type SimulatorHints } from '../driver.js';
import { SimXenstore } from './xenstore.js';

export interface SimDomain {
  domid: number;
  uuid: string;
  name: string;
  hvm: boolean;
  state: DomainInfo['state'];
  reason?: ShutdownReason;
  memoryBytes: number;
  maxMemoryBytes: number;
  vcpus: number;
  maxVcpus: number;
  cpuTimeSec: number;
  /** When it last started running (ms since epoch), while running. */
  runningSince?: number;
  /** Milliseconds of running time the guest still needs to finish booting (agent up at 0). */
  bootLeftMs: number;
  agentUp: boolean;
  disks: DiskSpec[];
  nics: NicSpec[];
  hints: SimulatorHints;
  console: string[];
}

/** How the parts of the simulator say that they changed a domain; the driver persists and tells its feed. */
export interface DomainNotices {
  /** The domain's record changed. */
  changed(d: SimDomain): void;
  /** The guest agent has something new in xenstore. */
  agentWrote(d: SimDomain): void;
}

export function cpuTime(d: SimDomain): number {
  const extra = d.state === 'running' && d.runningSince ? ((Date.now() - d.runningSince) / 1000) * Math.min(d.vcpus, 1) * 0.02 : 0;
  return d.cpuTimeSec + extra;
}

export interface StateOptions {
  /** Where the state is kept between daemon runs; none: in memory only. */
  stateFile?: string;
  /** Told when the state file could not be written. */
  onError?: (msg: string) => void;
}

export class SimState {
  readonly domains = new Map<number, SimDomain>();
  readonly xs = new SimXenstore();
  private nextDomid = 1;
  private persistQueued = false;
  private writing?: Promise<void>;
  private closed = false;

  constructor(private readonly opts: StateOptions) {}

  /** Reads the state file back, if there is one; returns the domains it held. */
  load(): SimDomain[] {
    const f = this.opts.stateFile;
    if (!f || !existsSync(f)) return [];
    const saved = JSON.parse(readFileSync(f, 'utf8')) as { nextDomid: number; domains: SimDomain[]; xenstore: Array<[string, string]> };
    this.nextDomid = saved.nextDomid;
    this.xs.load(saved.xenstore);
    for (const d of saved.domains) {
      d.console ??= [];
      // Running time does not accrue while no simulator runs; resume counting now.
      if (d.state === 'running') d.runningSince = Date.now();
      this.domains.set(d.domid, d);
    }
    return saved.domains;
  }

  newDomid(): number {
    return this.nextDomid++;
  }

  /** Whether `d` is still in the table (not destroyed, nor replaced by a domain with its domid). */
  has(d: SimDomain): boolean {
    return this.domains.get(d.domid) === d;
  }

  get(domid: number, command: string): SimDomain {
    const d = this.domains.get(domid);
    if (!d) throw new DriverError('no-such-domain', `domain ${domid} does not exist`, { command });
    return d;
  }

  /** Writes the state off the event loop, one write at a time, again if it changed meanwhile. */
  persist(): void {
    if (!this.opts.stateFile || this.closed) return;
    if (this.writing) {
      this.persistQueued = true;
      return;
    }
    this.writing = (async () => {
      do {
        this.persistQueued = false;
        try {
          const f = this.opts.stateFile!;
          await writeFile(`${f}.tmp`, this.snapshot());
          await rename(`${f}.tmp`, f);
        } catch (e) {
          // The table is written again at the next change and at close.
          this.opts.onError?.(`the simulator could not save its domain table: ${(e as Error).message}`);
        }
      } while (this.persistQueued && !this.closed);
      this.writing = undefined;
    })();
  }

  /** Stops writing in the background; the answer settles when a write under way has finished. */
  stopWriting(): Promise<void> | undefined {
    this.closed = true;
    return this.writing;
  }

  /** Writes the state now, on the event loop (at close). */
  persistNow(): void {
    const f = this.opts.stateFile;
    if (!f) return;
    writeFileSync(`${f}.tmp`, this.snapshot());
    renameSync(`${f}.tmp`, f);
  }

  private snapshot(): string {
    const domains = [...this.domains.values()].map((d) => ({ ...d, cpuTimeSec: cpuTime(d), runningSince: undefined }));
    return JSON.stringify({ nextDomid: this.nextDomid, domains, xenstore: this.xs.entries() });
  }
}

/** The memory of the machine the simulator runs on: the simulated host's by default. */
export function machineMemory(): number {
  try {
    const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return os.totalmem();
}
