// The storage layer of one daemon: the plugins found at start, the processes they run,
// the journal of storage changes in flight, and one lock per SR for the plugin calls
// that change an SR's contents. The operations (srops, vdiops, vbd, attach) take it as
// their first argument; daemon.ts makes one and starts it with startStorage (startup.ts).
import path from 'node:path';
import type { Logger } from 'pino';
import { fail, XenApiError } from '../core/errors.js';
import type { ObjectStore } from '../db/store.js';
import { NULL_REF } from '../datamodel/model.js';
import { ChildRegistry } from './children.js';
import { IntentJournal } from './intents.js';
import type { Manifest } from './manifest.js';
import { mapPluginFailure, PluginFailure, PluginPool, runPlugin, type PluginRequest, type SrInfo, type VdiInfo } from './plugin.js';

export interface CallOptions {
  vdi?: string | VdiInfo;
  args?: Record<string, unknown>;
  /** The XenAPI operation, for error parameters (VDI_IN_USE [vdi, op]). */
  op?: string;
  signal?: AbortSignal;
  /** Use this device_config instead of this host's PBD's (PBD.plug, SR.create). */
  deviceConfig?: Record<string, string>;
  /** For calls about an SR that has no record (yet): its type and uuid. */
  type?: string;
  srUuid?: string;
  smConfig?: Record<string, string>;
}

export interface AttachedDisk {
  vbd: string;
  vdi: string;
  sr: string;
  /** What the domain's disk configuration names: a file or a block device. */
  path: string;
  /** Image format at that path: "raw", "qcow2"... */
  format: string;
  readOnly: boolean;
  /** Extra keys the plugin wants in the device's xenstore area. */
  xenstoreData: Record<string, string>;
}

export interface BlockDeviceDriver {
  /** Hot-plugs the disk (or an empty CD drive when disk is undefined); returns the device name used. */
  plug(vm: string, vbd: string, disk: AttachedDisk | undefined): Promise<{ device: string }>;
  /** Hot-unplugs; force means without the guest's cooperation. */
  unplug(vm: string, vbd: string, force: boolean): Promise<void>;
  /** Changes the medium in an attached CD drive (undefined = eject). */
  changeMedium(vm: string, vbd: string, disk: AttachedDisk | undefined): Promise<void>;
}

export interface StorageDeps {
  store: ObjectStore;
  log: Logger;
  /** This host: the PBDs it attaches are its own. */
  hostRef: string;
  stateDir: string;
  /** Hot-plugs disks into running VMs (the VM layer's adapter to its hypervisor driver). */
  devices: BlockDeviceDriver;
  /** Where plugins are looked for (default: pluginDirs() in manifest.ts). */
  pluginDirs?: string[];
}

export class StorageService {
  readonly store: ObjectStore;
  readonly log: Logger;
  readonly hostRef: string;
  readonly devices: BlockDeviceDriver;
  readonly pluginDirs?: string[];
  readonly children: ChildRegistry;
  readonly intents: IntentJournal;
  readonly pool: PluginPool;
  /** Filled by startStorage from the plugin folders. */
  plugins = new Map<string, Manifest>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** SR figures a plugin sent along with an answer (`sr_stat` in a result), not yet used. */
  readonly freshFigures = new Map<string, Record<string, unknown>>();
  /** Test hook: `crash-after:<command>` kills the daemon right after that plugin command answers. */
  private readonly fault = process.env.XAPID_STORAGE_FAULT ?? '';

  constructor(deps: StorageDeps) {
    this.store = deps.store;
    this.log = deps.log;
    this.hostRef = deps.hostRef;
    this.devices = deps.devices;
    this.pluginDirs = deps.pluginDirs;
    const dir = path.join(deps.stateDir, 'storage');
    this.children = new ChildRegistry(path.join(dir, 'running'));
    this.intents = new IntentJournal(path.join(dir, 'journal'));
    this.pool = new PluginPool(this.children);
  }

  /** Ends the spare plugin processes; calls still running finish on their own. */
  stop(): void {
    this.pool.stop();
  }

  hostUuid(): string {
    return this.store.field('host', this.hostRef, 'uuid') ?? '';
  }

  manifestForType(type: string): Manifest {
    const m = this.plugins.get(type.toLowerCase());
    if (!m) fail('SR_UNKNOWN_DRIVER', type);
    return m;
  }

  manifestOf(sr: string): Manifest {
    return this.manifestForType(this.store.field('SR', sr, 'type') ?? '');
  }

  requireCapability(sr: string, cap: string): void {
    if (!this.manifestOf(sr).capabilities.includes(cap)) fail('SR_OPERATION_NOT_SUPPORTED', sr);
  }

  /** This host's PBD for the SR, if it has one. */
  localPbd(sr: string): string | undefined {
    const pbds = this.store.field('SR', sr, 'PBDs') ?? [];
    return pbds.find((p) => this.store.field('PBD', p, 'host') === this.hostRef);
  }

  /** This host's plugged PBD for the SR, or SR_HAS_NO_PBDS. */
  requirePlugged(sr: string): string {
    const pbd = this.localPbd(sr);
    if (!pbd || !this.store.field('PBD', pbd, 'currently_attached')) fail('SR_HAS_NO_PBDS', sr);
    return pbd;
  }

  vdiInfo(vdi: string): VdiInfo {
    const r = this.store.get('VDI', vdi);
    if (!r) fail('HANDLE_INVALID', 'VDI', vdi);
    return { uuid: r.uuid, location: r.location, sm_config: r.sm_config };
  }

  private srInfo(sr: string, o: CallOptions): SrInfo {
    const rec = sr === NULL_REF ? undefined : this.store.get('SR', sr);
    let dc = o.deviceConfig;
    if (!dc) {
      const pbd = rec ? this.localPbd(sr) : undefined;
      if (!pbd) fail('SR_HAS_NO_PBDS', sr);
      dc = this.store.field('PBD', pbd, 'device_config') ?? {};
    }
    return { uuid: o.srUuid ?? rec?.uuid ?? '', device_config: dc, sm_config: o.smConfig ?? rec?.sm_config ?? {} };
  }

  /** Runs one plugin command for an SR; plugin errors come back as XenAPI errors. */
  async call(sr: string, command: string, o: CallOptions = {}): Promise<Record<string, unknown>> {
    const m = o.type ? this.manifestForType(o.type) : this.manifestOf(sr);
    const vdiRef = typeof o.vdi === 'string' ? o.vdi : undefined;
    const req: PluginRequest = {
      command,
      sr: command === 'sr_probe' ? undefined : this.srInfo(sr, o),
      vdi: typeof o.vdi === 'string' ? this.vdiInfo(o.vdi) : o.vdi,
      args: o.args,
    };
    try {
      const result = await runPlugin(m, req, { hostUuid: this.hostUuid(), children: this.children, pool: this.pool, signal: o.signal });
      if (this.fault === `crash-after:${command}`) this.crash();
      const st = result.sr_stat;
      if (sr && st && typeof st === 'object' && !Array.isArray(st)) this.freshFigures.set(sr, st as Record<string, unknown>);
      return result;
    } catch (e) {
      if (e instanceof PluginFailure) throw mapPluginFailure(e, { sr, vdi: vdiRef, op: o.op ?? command });
      throw e;
    }
  }

  /** The fault hook's way out: as abrupt as a power cut for the daemon's own state. */
  crash(): never {
    this.log.warn('XAPID_STORAGE_FAULT: killing the daemon on purpose');
    process.kill(process.pid, 'SIGKILL');
    throw new XenApiError('INTERNAL_ERROR', ['unreachable']);
  }

  faultIs(name: string): boolean {
    return this.fault === name;
  }

  /** Runs fn alone among the SR's locked sections (calls that change what the SR holds). */
  locked<T>(sr: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(sr) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(sr, tail);
    void tail.then(() => {
      if (this.chains.get(sr) === tail) this.chains.delete(sr);
    });
    return next;
  }
}
