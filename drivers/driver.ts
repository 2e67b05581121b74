// The hypervisor driver interface: everything xapid does to domains goes through one
// of these. Only the VM state machine (src/vm/) holds a driver. Two implementations:
// drivers/xl (real Xen through the xl and xenstore-* command lines) and
// drivers/simulator (in-process domains with the same behaviour and realistic timings).
//
// A domain is tied to its VM by uuid: the domain's handle is the VM's uuid.

/** What the hypervisor says a domain is doing. */
export type DomainState = 'running' | 'paused' | 'shutdown' | 'crashed' | 'dying';

/** Why a domain stopped, as Xen records it (SHUTDOWN_* codes). */
export type ShutdownReason = 'poweroff' | 'reboot' | 'suspend' | 'crash' | 'watchdog' | 'soft_reset' | 'unknown';

export interface DomainInfo {
  domid: number;
  /** The VM's uuid (the domain handle). */
  uuid: string;
  name: string;
  state: DomainState;
  /** Set when state is shutdown or crashed. */
  shutdownReason?: ShutdownReason;
  /** Memory the domain has now, and its ceiling, in bytes. */
  memoryBytes: number;
  maxMemoryBytes: number;
  /** VCPUs online now, and the most it may have. */
  vcpus: number;
  maxVcpus: number;
  /** Physical CPU each online VCPU last ran on (empty when unknown). */
  vcpuCpu: Record<number, number>;
  cpuTimeSec: number;
  hvm: boolean;
}

export interface DiskSpec {
  /** Device name in the guest: xvda, hdc… */
  vdev: string;
  /** The VBD's userdevice (0, 1…), and its ref, for error messages. */
  userdevice: string;
  vbd: string;
  /** Where the data is in dom0 (a file or block device); empty for an empty CD drive. */
  path: string;
  /** Image format as the storage layer reports it. */
  format: 'raw' | 'qcow2' | 'vhd' | 'empty';
  readonly: boolean;
  cdrom: boolean;
  bootable: boolean;
}

export interface NicSpec {
  devid: number;
  vif: string;
  mac: string;
  bridge: string;
  mtu: number;
}

/** Test-only behaviour of the simulator, from VM other_config keys (drivers/README.md); other drivers ignore it. */
export interface SimulatorHints {
  /** Refuse to create the domain, with this message. */
  refuseStart?: string;
  /** `ignore`: the guest never acknowledges a shutdown request; `hang`: it acknowledges but never stops. */
  shutdown?: 'ignore' | 'hang';
  /** Milliseconds (before the driver's scaling) the domain build takes. */
  buildMs?: number;
  /** No guest agent: no guest metrics, and an HVM guest has no PV drivers. */
  noAgent?: boolean;
}

/** A domain's configuration, derived from the VM record by src/vm/config.ts. */
export interface DomainConfig {
  uuid: string;
  /** Domain name: unique on the host. */
  name: string;
  hvm: boolean;
  memory: {
    /** Ceiling (memory_static_max) and initial target (memory_target, clamped), bytes. */
    maxBytes: number;
    targetBytes: number;
    /** HVM shadow memory, MiB (0: the hypervisor's default). */
    shadowMiB: number;
  };
  vcpus: {
    max: number;
    atStartup: number;
    /** Scheduler weight and cap, and a CPU mask such as "0,2-3", from VCPUs_params. */
    weight?: number;
    cap?: number;
    mask?: string;
  };
  pv?: {
    /** `pygrub`, an absolute path to a bootloader in dom0, or empty for a direct kernel boot. */
    bootloader: string;
    bootloaderArgs: string;
    kernel: string;
    ramdisk: string;
    args: string;
  };
  hvmBoot?: {
    /** Boot device order passed to the device model, e.g. "dc". */
    order: string;
  };
  /** Platform flags (acpi, apic, pae, nx, viridian…) as strings "true"/"false"/other. */
  platform: Record<string, string>;
  disks: DiskSpec[];
  nics: NicSpec[];
  /** Written under /local/domain/<domid>/vm-data at creation (VM.xenstore_data). */
  xenstoreData: Record<string, string>;
  sim?: SimulatorHints;
}

export type DomainEvent =
  /** A domain appeared or its state changed. */
  | { kind: 'changed'; info: DomainInfo }
  /** A domain no longer exists. */
  | { kind: 'gone'; domid: number; uuid: string }
  /** The guest wrote something its agent reports (data/, attr/ in xenstore). */
  | { kind: 'guest'; domid: number; uuid: string };

export interface HostFacts {
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  cpus: number;
  /** e.g. "4.17.5"; empty when unknown. */
  xenVersion: string;
}

/** A text console: output as it comes, input to the guest. */
export interface ConsoleStream {
  onData(listener: (text: string) => void): void;
  write(text: string): void;
  close(): void;
}

/** What went wrong in the hypervisor, for src/vm/ to turn into the XenAPI error that fits. */
export type DriverErrorKind =
  | 'no-such-domain'
  | 'exists'
  | 'build'
  | 'bootloader'
  | 'unknown-bootloader'
  | 'no-memory'
  | 'no-pv-drivers'
  | 'ack-timeout'
  | 'timeout'
  | 'device'
  | 'unsupported'
  | 'invalid'
  | 'failed';

export class DriverError extends Error {
  constructor(
    readonly kind: DriverErrorKind,
    message: string,
    readonly detail: {
      /** The command line that failed (xl), or the simulated operation. */
      command?: string;
      exitCode?: number | null;
      stderr?: string;
      /** For no-memory: bytes needed and available. */
      needed?: number;
      available?: number;
      /** For timeouts: the limit in seconds. */
      timeoutSec?: number;
      /** For exists: the domain already there. */
      domid?: number;
    } = {},
  ) {
    super(message);
  }
}

export interface Driver {
  readonly name: 'sim' | 'xl';
  /** Starts watching domains; call once before anything else. */
  open(): Promise<void>;
  close(): Promise<void>;

  host(): Promise<HostFacts>;
  list(): Promise<DomainInfo[]>;
  /** One domain, or undefined if it does not exist. */
  info(domid: number): Promise<DomainInfo | undefined>;
  /** The change feed: domain appearances, state changes, disappearances, guest agent updates. */
  subscribe(listener: (e: DomainEvent) => void): () => void;

  /** Builds a domain; it is left paused when `paused`, else running. */
  create(cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo>;
  destroy(domid: number): Promise<void>;
  /** Asks the guest to power off, reboot or suspend; resolves once the guest has
   * acknowledged the request (within ackTimeoutMs), not when it has stopped. */
  requestShutdown(domid: number, reason: 'poweroff' | 'reboot', ackTimeoutMs: number): Promise<void>;
  pause(domid: number): Promise<void>;
  unpause(domid: number): Promise<void>;
  /** Suspends the guest and writes its image to `path`; the domain is gone afterwards. */
  save(domid: number, path: string, timeoutMs: number): Promise<void>;
  /** Rebuilds a domain from an image written by save. */
  restore(path: string, cfg: DomainConfig, opts: { paused: boolean }): Promise<DomainInfo>;
  /** Writes the memory of a (crashed) domain to `path`. */
  dumpCore(domid: number, path: string): Promise<void>;

  setVcpus(domid: number, n: number): Promise<void>;
  setMemoryTarget(domid: number, bytes: number): Promise<void>;
  setShadowMemory(domid: number, mib: number): Promise<void>;
  /** Scheduler weight and cap, and the CPUs the VCPUs may run on. */
  setVcpuParams(domid: number, p: { weight?: number; cap?: number; mask?: string }): Promise<void>;
  sysrq(domid: number, key: string): Promise<void>;
  trigger(domid: number, trigger: string, vcpu?: number): Promise<void>;

  attachDisk(domid: number, disk: DiskSpec): Promise<void>;
  detachDisk(domid: number, vdev: string, force: boolean): Promise<void>;
  attachNic(domid: number, nic: NicSpec): Promise<void>;
  detachNic(domid: number, devid: number, force: boolean): Promise<void>;
  /** Puts a medium into a CD drive, or empties it (disk undefined). */
  changeCd(domid: number, vdev: string, disk: DiskSpec | undefined): Promise<void>;

  xenstoreRead(path: string): Promise<string | undefined>;
  xenstoreWrite(path: string, value: string): Promise<void>;
  /** Every key below `path`, as paths relative to it ("data/os_name" → value). */
  xenstoreList(path: string): Promise<Record<string, string>>;
  xenstoreRemove(path: string): Promise<void>;
  /** Calls back whenever something at or below `path` changes. */
  xenstoreWatch(path: string, listener: (path: string) => void): () => void;

  console(domid: number): Promise<ConsoleStream>;
}
