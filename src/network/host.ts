// What xapid does to the host's (or its namespace's) interfaces, in idempotent steps
// built on the ip runner. Devices xapid creates carry an ifalias starting "xapid:" so
// that they, and only they, may later be deleted by xapid. When the daemon keeps its
// network changes in the database only, `live` is false and every step does nothing.
//
// Spawning `ip` is the slow part, so within one operation the link and address tables
// are read once and kept up to date by the steps themselves, and the steps' commands
// are queued and sent as one `ip -batch` when something must be read afresh or the
// operation calls `flush` (which throws the first failure). A failure forgets the
// tables, since the host's state is then unknown. Undo steps are "make it so" steps,
// harmless where the step they undo never ran.
import type { Logger } from 'pino';
import { IpError, type IpRunner, setLinkArgs, type IpAddress, type Link, type LinkAttrs, type SysFacts } from './ip.js';

export const ALIAS = {
  /** A stand-in for a physical NIC in a namespace. */
  nic: 'xapid:nic',
  /** The other end of a stand-in veth pair. */
  wire: 'xapid:wire',
  bridge: 'xapid:bridge',
  vlan: 'xapid:vlan',
  bond: 'xapid:bond',
  /** A tap standing in for a VIF backend that no hypervisor made (simulator, namespace mode). */
  vif: 'xapid:vif',
} as const;

export const isOwned = (l: Link | undefined): boolean =>
  Boolean(l?.alias && l.alias.startsWith('xapid:') && l.alias !== ALIAS.nic && l.alias !== ALIAS.wire);

/** Steps undone in reverse order if a later step fails. */
export class Undo {
  private readonly steps: Array<{ what: string; fn: () => Promise<unknown> }> = [];
  /** `after` runs once the steps are done (e.g. sends the commands they queued). */
  constructor(private readonly log: Logger, private readonly after?: () => Promise<void>) {}
  push(what: string, fn: () => Promise<unknown>): void {
    this.steps.push({ what, fn });
  }
  async run(): Promise<void> {
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.fn();
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err), step: s.what }, 'could not undo a network change');
      }
    }
    try {
      await this.after?.();
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not undo every network change');
    }
  }
}

export class HostNet {
  private linkCache?: Map<string, Link>;
  private addrCache?: Map<string, IpAddress[]>;
  private pending: string[][] = [];

  constructor(
    readonly ip: IpRunner,
    /** False: database only, nothing on the host changes or is read. */
    readonly live: boolean,
    private readonly log: Logger,
  ) {}

  /** Forgets what was read; the next read asks the kernel again. Queued commands are
   * dropped: call flush first to send them. */
  invalidate(): void {
    this.linkCache = undefined;
    this.addrCache = undefined;
    this.pending = [];
  }

  /** Sends the queued commands (one process); on failure forgets the tables and throws.
   * `force` runs every command even past a failure (for undoing). */
  async flush(force = false): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    try {
      await this.ip.batch(lines, force);
    } catch (e) {
      this.invalidate();
      throw e;
    }
  }

  async links(): Promise<Map<string, Link>> {
    if (!this.live) return new Map();
    if (!this.linkCache) {
      await this.flush();
      this.linkCache = await this.ip.links();
    }
    return this.linkCache;
  }

  /** Fresh links and sysfs facts (for discovery and metrics). */
  async state(): Promise<{ links: Map<string, Link>; facts: Map<string, SysFacts> }> {
    if (!this.live) return { links: new Map(), facts: new Map() };
    await this.flush();
    const s = await this.ip.state();
    this.linkCache = s.links;
    return s;
  }

  async link(name: string): Promise<Link | undefined> {
    return (await this.links()).get(name);
  }

  async addresses(dev: string): Promise<IpAddress[]> {
    if (!this.live) return [];
    if (!this.addrCache) {
      await this.flush();
      this.addrCache = await this.ip.allAddresses();
    }
    return this.addrCache.get(dev) ?? [];
  }

  /** Queues commands and applies their effect to the cached tables. */
  private step(lines: string[][], after: (links: Map<string, Link> | undefined) => void): void {
    this.pending.push(...lines);
    after(this.linkCache);
  }

  /** One `ip link set` with the attributes that differ from what the link has now. */
  async setLink(name: string, a: LinkAttrs, undo?: Undo): Promise<void> {
    if (!this.live) return;
    const l = await this.link(name);
    if (!l) throw new IpError(['ip', 'link', 'set', 'dev', name], 'missing', `Cannot find device "${name}"`);
    const change: LinkAttrs = {};
    const back: LinkAttrs = {};
    if (a.master !== undefined && l.master !== a.master) {
      change.master = a.master;
      if (l.master) back.master = l.master;
      else back.nomaster = true;
    }
    if (a.nomaster && l.master) {
      change.nomaster = true;
      back.master = l.master;
    }
    if (a.mtu !== undefined && l.mtu !== a.mtu) [change.mtu, back.mtu] = [a.mtu, l.mtu];
    if (a.mac !== undefined && l.mac !== a.mac.toLowerCase()) [change.mac, back.mac] = [a.mac.toLowerCase(), l.mac];
    if (a.alias !== undefined && l.alias !== a.alias) [change.alias, back.alias] = [a.alias, l.alias ?? ''];
    if (a.up !== undefined && l.up !== a.up) [change.up, back.up] = [a.up, l.up];
    if (Object.keys(change).length === 0) return;
    this.step([setLinkArgs(name, change)], (links) => {
      const x = links?.get(name);
      if (!x) return;
      if (change.nomaster) delete x.master;
      if (change.master !== undefined) x.master = change.master;
      if (change.mtu !== undefined) x.mtu = change.mtu;
      if (change.mac !== undefined) x.mac = change.mac;
      if (change.alias !== undefined) x.alias = change.alias;
      if (change.up !== undefined) x.up = change.up;
    });
    undo?.push(`restore ${name}`, () => this.setLink(name, back));
  }

  /** Creates the bridge if missing and brings it up; true if it was created now. */
  async ensureBridge(name: string, undo?: Undo, mac?: string): Promise<boolean> {
    if (!this.live) return false;
    const l = await this.link(name);
    if (l && l.kind !== 'bridge') throw new IpError(['ip', 'link', 'add', name], 'exists', `${name} exists and is not a bridge (${l.kind ?? 'a NIC'})`);
    if (l) {
      await this.setLink(name, { up: true, mac }, undo);
      return false;
    }
    this.step([
      ['link', 'add', 'name', name, ...(mac ? ['address', mac] : []), 'type', 'bridge'],
      ['link', 'set', 'dev', name, 'alias', ALIAS.bridge, 'up'],
    ], (links) => {
      links?.set(name, { name, index: -1, mac: mac?.toLowerCase() ?? '', mtu: 1500, up: true, carrier: false, kind: 'bridge', alias: ALIAS.bridge });
    });
    undo?.push(`delete bridge ${name}`, () => this.deleteOwned(name));
    return true;
  }

  /** Deletes a device xapid created (alias "xapid:…"); leaves anything else alone. */
  async deleteOwned(name: string): Promise<boolean> {
    if (!this.live) return false;
    const l = await this.link(name);
    if (!l) return false;
    if (!isOwned(l)) {
      this.log.info({ device: name }, 'not deleting a device xapid did not create');
      return false;
    }
    this.step([['link', 'delete', 'dev', name]], (links) => {
      links?.delete(name);
      // Ports and bond members are released; VLANs on the device go with it.
      for (const x of links?.values() ?? []) {
        if (x.master === name) delete x.master;
        if (x.kind === 'vlan' && x.link === name) links!.delete(x.name);
      }
      this.addrCache?.delete(name);
    });
    return true;
  }

  /** Puts dev under master (a bridge or bond) unless it is there already. */
  async enslave(dev: string, master: string, undo?: Undo, up?: boolean): Promise<void> {
    await this.setLink(dev, { master, up }, undo);
  }

  async release(dev: string): Promise<void> {
    if (!this.live) return;
    if ((await this.link(dev))?.master) await this.setLink(dev, { nomaster: true });
  }

  async setUp(dev: string, up: boolean, undo?: Undo): Promise<void> {
    if (!this.live || !(await this.link(dev))) return;
    await this.setLink(dev, { up }, undo);
  }

  async addVlan(name: string, lower: string, tag: number, undo?: Undo): Promise<void> {
    if (!this.live) return;
    const l = await this.link(name);
    if (l) {
      if (l.kind === 'vlan' && l.vlanId === tag && l.link === lower) return this.setLink(name, { up: true }, undo);
      throw new IpError(['ip', 'link', 'add', name], 'exists', `${name} exists and is not VLAN ${tag} on ${lower}`);
    }
    this.step([
      ['link', 'add', 'link', lower, 'name', name, 'type', 'vlan', 'protocol', '802.1Q', 'id', String(tag)],
      ['link', 'set', 'dev', name, 'alias', ALIAS.vlan, 'up'],
    ], (links) => {
      const parent = links?.get(lower);
      links?.set(name, { name, index: -1, mac: parent?.mac ?? '', mtu: parent?.mtu ?? 1500, up: true, carrier: false, kind: 'vlan', vlanId: tag, link: lower, alias: ALIAS.vlan });
    });
    undo?.push(`delete VLAN device ${name}`, () => this.deleteOwned(name));
  }

  /** A tap device (down) marked as xapid's stand-in for a VIF backend. */
  async addTap(name: string, undo?: Undo): Promise<void> {
    if (!this.live) return;
    this.step([
      ['tuntap', 'add', 'dev', name, 'mode', 'tap'],
      ['link', 'set', 'dev', name, 'alias', ALIAS.vif],
    ], (links) => {
      links?.set(name, { name, index: -1, mac: '', mtu: 1500, up: false, carrier: false, kind: 'tun', alias: ALIAS.vif });
    });
    undo?.push(`delete tap ${name}`, () => this.deleteOwned(name));
  }

  async addBond(name: string, mode: string, opts: Record<string, string>, undo?: Undo): Promise<void> {
    if (!this.live) return;
    const l = await this.link(name);
    if (l) {
      if (l.kind === 'bond') return;
      throw new IpError(['ip', 'link', 'add', name], 'exists', `${name} exists and is not a bond`);
    }
    this.step([
      ['link', 'add', 'name', name, 'type', 'bond', 'mode', mode, ...Object.entries(opts).flat()],
      ['link', 'set', 'dev', name, 'alias', ALIAS.bond],
    ], (links) => {
      links?.set(name, { name, index: -1, mac: '', mtu: 1500, up: false, carrier: false, kind: 'bond', bondMode: mode, alias: ALIAS.bond });
    });
    undo?.push(`delete bond ${name}`, () => this.deleteOwned(name));
  }

  /** Sets a device's IPv4 configuration: none, or exactly one static address. DHCP
   * leases (dynamic addresses) are kept when `keepDynamic`. */
  async setIPv4(dev: string, cfg: { address?: string; prefixlen?: number; keepDynamic?: boolean }): Promise<void> {
    if (!this.live) return;
    const current = await this.addresses(dev);
    const key = (a: { address: string; prefixlen: number }) => `${a.address}/${a.prefixlen}`;
    const wanted = cfg.address ? `${cfg.address}/${cfg.prefixlen}` : undefined;
    for (const a of current.filter((x) => key(x) !== wanted && !(cfg.keepDynamic && x.dynamic))) {
      this.step([['addr', 'del', key(a), 'dev', dev]], () => {
        this.addrCache?.set(dev, (this.addrCache.get(dev) ?? []).filter((x) => key(x) !== key(a)));
      });
    }
    if (wanted && !current.some((a) => key(a) === wanted)) {
      this.step([['addr', 'add', wanted, 'dev', dev]], () => {
        this.addrCache?.set(dev, [...(this.addrCache.get(dev) ?? []), { address: cfg.address!, prefixlen: cfg.prefixlen!, dynamic: false }]);
      });
    }
  }

  /** Adds addresses back (undo of a move). */
  async restoreAddresses(dev: string, addrs: IpAddress[]): Promise<void> {
    if (!this.live) return;
    for (const a of addrs) {
      this.step([['addr', 'add', `${a.address}/${a.prefixlen}`, 'dev', dev]], () => {
        this.addrCache?.set(dev, [...(this.addrCache.get(dev) ?? []), a]);
      });
    }
  }

  async setDefaultRoute(gateway: string, dev: string): Promise<void> {
    if (!this.live) return;
    this.step([['route', 'replace', 'default', 'via', gateway, 'dev', dev]], () => undefined);
  }

  async setRateLimit(dev: string, kbps: number | undefined): Promise<void> {
    if (!this.live) return;
    await this.flush();
    if (kbps === undefined) await this.ip.clearRateLimit(dev);
    else await this.ip.setRateLimit(dev, kbps);
  }
}
