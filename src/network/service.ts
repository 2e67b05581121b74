// The daemon's networking: which interfaces it works on (host, its namespace, or the
// database only), NIC discovery, bringing PIFs up and down on their bridges (with a
// DHCP client for DHCP PIFs: ./dhcp.ts, ./leases.ts), PIF metrics, reconciling the
// database with the host at start, and attaching VIF
// backends to bridges for the hypervisor driver. API operations (src/network/ops.ts)
// run one at a time under `exclusive`, as xapi serialises network reconfiguration.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import type { PIFRecord, PIF_metricsRecord } from '../datamodel/records.js';
import { NULL_REF } from '../datamodel/model.js';
import { now } from '../core/datetime.js';
import { XenApiError, fail } from '../core/errors.js';
import { updateAllowedOperations } from '../core/operations.js';
import { IpError, IpRunner, type Link, type SysFacts } from './ip.js';
import { ALIAS, HostNet, Undo, isOwned } from './host.js';
import { createStandIns, guardNamespace, namespaceExists, namespaceName, ownerMark, type NetworkMode } from './namespace.js';
import { bridgeForDevice, validIfName, netmaskOfPrefix, networkLabelForDevice, prefixOfNetmask, randomMac, vlanDeviceName, vifBackendName } from './names.js';
import { pciNames } from './pciids.js';
import { DhcpClients } from './dhcp.js';
import { recordLeases } from './leases.js';

export interface NetworkServiceOptions {
  store: ObjectStore;
  log: Logger;
  hostRef: string;
  mode: NetworkMode;
  /** Work in this existing namespace (made by someone else, never deleted by xapid). */
  netns?: string;
  stateDir: string;
  /** Stand-in NICs made in an owned namespace (or in the database) on first start. */
  simNics?: number;
  timeoutMs?: number;
  /** Seconds between PIF metrics refreshes; 0 disables them. */
  metricsIntervalSec?: number;
  /** Longest wait of PIF.reconfigure_ip/plug for a first DHCP lease (default 30). */
  dhcpWaitSec?: number;
  /** VIF hot-plug into running VMs (the VM layer's adapter, src/vm/hotplug.ts). */
  hotplug: VifHotplug;
}

/** A physical NIC (or its stand-in) found on the host. */
export interface Nic {
  device: string;
  mac: string;
  mtu: number;
  link: Link;
  facts: SysFacts;
}

/** What the hypervisor side offers for VIF hot-plug (src/vm/hotplug.ts). */
export interface VifHotplug {
  /** Creates the backend device of a VIF in a running VM; returns its host interface name. */
  plug(vm: string, vif: string): Promise<string>;
  /** Removes the VIF's backend device from the running VM. */
  unplug(vm: string, vif: string): Promise<void>;
}

/** Linux bonding modes for the XenAPI bond modes (the bridge backend has no SLB of its own). */
export const LINUX_BOND_MODE: Record<string, string> = {
  'balance-slb': 'balance-alb',
  'active-backup': 'active-backup',
  lacp: '802.3ad',
};

export interface IpPlan {
  mode: 'None' | 'DHCP' | 'Static';
  IP: string;
  netmask: string;
  gateway: string;
  management: boolean;
}

export interface BondPlan {
  name: string;
  /** The XenAPI bond mode. */
  mode: string;
  options: Record<string, string>;
  mac: string;
  members: string[];
}

/** What one PIF needs on the host: exactly one of physical, vlan, bond. */
export interface PifPlan {
  pif?: string;
  bridge: string;
  ip: IpPlan;
  physical?: { device: string };
  vlan?: { device: string; lower: string; tag: number; lowerBond?: BondPlan };
  bond?: BondPlan;
}

export function ipPlanOf(p: PIFRecord): IpPlan {
  return { mode: p.ip_configuration_mode, IP: p.IP, netmask: p.netmask, gateway: p.gateway, management: p.management };
}

export const natural = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export class NetworkService {
  readonly store: ObjectStore;
  readonly log: Logger;
  readonly hostRef: string;
  /** The mode in effect (none when the requested one could not be had). */
  readonly mode: NetworkMode;
  readonly netns?: string;
  readonly ownsNamespace: boolean;
  readonly host: HostNet;
  readonly hotplug: VifHotplug;
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  /** The DHCP clients of DHCP-mode PIFs (absent in mode none). */
  dhcp?: DhcpClients;
  /** Longest wait for a first lease (see awaitLease in ./leases.ts). */
  dhcpWaitMs = 30_000;
  private stopped = false;

  private freshNamespace = false;
  private guard?: ChildProcess;

  private constructor(o: NetworkServiceOptions, mode: NetworkMode, netns: string | undefined, owns: boolean, log: Logger) {
    this.store = o.store;
    this.log = log;
    this.hostRef = o.hostRef;
    this.mode = mode;
    this.netns = netns;
    this.ownsNamespace = owns;
    this.hotplug = o.hotplug;
    const ip = new IpRunner({ netns, timeoutMs: o.timeoutMs ?? 10_000, log });
    this.host = new HostNet(ip, mode !== 'none', log);
  }

  /** Sets up the mode, then discovers NICs (first start) or reconciles (later starts). */
  static async start(o: NetworkServiceOptions): Promise<NetworkService> {
    const log = o.log.child({ component: 'network' });
    const timeoutMs = o.timeoutMs ?? 10_000;
    let mode = o.mode;
    let netns: string | undefined;
    let owns = false;
    let fresh = false;
    if (mode === 'namespace') {
      netns = o.netns ?? namespaceName(o.stateDir);
      if (o.netns) {
        if (!namespaceExists(netns)) throw new Error(`the network namespace ${netns} given with --netns does not exist`);
        log.info({ netns }, 'network changes happen in the given network namespace');
      } else if (namespaceExists(netns)) {
        owns = true;
        log.info({ netns }, 'network namespace found again: network changes happen inside it');
      } else {
        try {
          await IpRunner.netnsAdd(netns, timeoutMs);
          owns = true;
          fresh = true;
          log.info({ netns }, 'network namespace created: network changes happen inside it, the host\'s interfaces are not touched');
        } catch (e) {
          log.warn({ err: e instanceof IpError ? e.detail : String(e), netns }, 'could not create a network namespace (no rights?): network changes are kept in the database only');
          mode = 'none';
          netns = undefined;
        }
      }
    } else if (mode === 'host') {
      try {
        await new IpRunner({ timeoutMs }).links();
        log.warn('network mode host: xapid changes this machine\'s own interfaces');
      } catch (e) {
        log.error({ err: e instanceof IpError ? e.detail : String(e) }, 'cannot use iproute2 on this host: network changes are kept in the database only');
        mode = 'none';
      }
    } else {
      log.info('network mode none: network changes are kept in the database only');
    }
    const svc = new NetworkService(o, mode, netns, owns, log);
    svc.freshNamespace = fresh;
    if (owns && netns) svc.guard = guardNamespace(netns);
    if (o.dhcpWaitSec !== undefined) svc.dhcpWaitMs = o.dhcpWaitSec * 1000;
    try {
      // Host mode: clients outlive xapid, as dhclient outlives xapi, and are adopted here.
      if (svc.host.live) {
        svc.dhcp = await DhcpClients.open({
          dir: path.join(o.stateDir, 'dhcp'), netns, persistent: mode === 'host', log,
          onChange: () => recordLeases(svc),
        });
      }
      await svc.exclusive(() => svc.init(o.simNics ?? 2));
      // Clients of an earlier run that no PIF took back.
      await svc.dhcp?.dropOrphans();
    } catch (e) {
      await svc.stop();
      throw e;
    }
    const every = o.metricsIntervalSec ?? 60;
    if (every > 0) {
      svc.timer = setInterval(() => {
        svc.dhcp?.rereadAll();
        void svc.exclusive(() => svc.refreshMetrics()).catch((err) => log.warn({ err }, 'PIF metrics refresh failed'));
      }, every * 1000);
      svc.timer.unref();
    }
    return svc;
  }

  /** Waits for running operations, stops the DHCP clients (namespace mode; in host mode
   * they keep their leases for the next start to adopt), then removes the namespace if
   * xapid made it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    if (this.dhcp && this.mode !== 'host') await this.dhcp.stopAll();
    this.dhcp?.close();
    if (this.ownsNamespace && this.netns) {
      try {
        await IpRunner.netnsDelete(this.netns);
        this.log.info({ netns: this.netns }, 'network namespace removed');
        this.guard?.stdin?.end();
      } catch (e) {
        this.log.error({ err: e instanceof IpError ? e.detail : String(e), netns: this.netns }, 'could not remove the network namespace');
      }
    }
  }

  /** An undo list whose queued commands are sent, all of them, when it has run. */
  undo(): Undo {
    return new Undo(this.log, () => this.host.flush(true));
  }

  /** Runs fn after every network operation started before it (one at a time). Commands
   * still queued at the end are sent (an operation that forgot to is a bug: logged). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      this.host.invalidate();
      try {
        return await fn();
      } finally {
        await this.host.flush(true).catch((err) => this.log.error({ err: describe(err) }, 'queued network commands failed'));
        this.host.invalidate();
        // A lease that came while the database did not want it yet (e.g. before the
        // PIF's new mode was recorded) is recorded now.
        recordLeases(this);
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  // ---- database helpers ---------------------------------------------------------

  localPifs(): Array<[string, PIFRecord]> {
    const out: Array<[string, PIFRecord]> = [];
    for (const [ref, rec] of this.store.allRecords('PIF')) if (rec.host === this.hostRef) out.push([ref, rec as unknown as PIFRecord]);
    return out;
  }

  pif(ref: string): PIFRecord {
    const p = this.store.get('PIF', ref);
    if (!p) fail('HANDLE_INVALID', 'PIF', ref);
    return p;
  }

  bridgeOf(network: string): string {
    return this.store.field('network', network, 'bridge') ?? '';
  }

  isVlanPif(p: PIFRecord): boolean {
    return p.VLAN_master_of !== NULL_REF;
  }

  isBondMaster(p: PIFRecord): boolean {
    return p.bond_master_of.length > 0;
  }

  /** The host device that carries a PIF: the NIC, the bond, or the 802.1Q device. */
  deviceOf(p: PIFRecord): string {
    if (this.isVlanPif(p)) {
      const vlan = this.store.get('VLAN', p.VLAN_master_of);
      const tagged = vlan && this.store.get('PIF', vlan.tagged_PIF);
      return vlanDeviceName(tagged?.device ?? p.device, vlan?.tag ?? p.VLAN);
    }
    return p.device;
  }

  /** Every MAC in use by a PIF or VIF, lower case. */
  takenMacs(): Set<string> {
    const out = new Set<string>();
    for (const cls of ['PIF', 'VIF']) for (const rec of this.store.allRecords(cls).values()) out.add(String(rec.MAC).toLowerCase());
    return out;
  }

  /** A PIF with its metrics object. */
  createPif(fields: Partial<PIFRecord>): string {
    return this.store.tx(() => {
      const metrics = this.store.create('PIF_metrics', { last_updated: now() });
      return this.store.create('PIF', { VLAN: -1, other_config: {}, ...fields, host: fields.host ?? this.hostRef, metrics });
    });
  }

  destroyPif(ref: string): void {
    this.store.tx(() => {
      const metrics = this.store.field('PIF', ref, 'metrics');
      this.store.destroy('PIF', ref);
      if (metrics && metrics !== NULL_REF && this.store.exists('PIF_metrics', metrics)) this.store.destroy('PIF_metrics', metrics);
    });
  }

  /** The network whose bridge is `bridge`, made if there is none. */
  networkForBridge(bridge: string, label: string): string {
    const found = [...this.store.allRecords('network')].find(([, n]) => n.bridge === bridge);
    if (found) return found[0];
    const ref = this.store.create('network', { name_label: label, name_description: '', bridge, other_config: {} });
    updateAllowedOperations(this.store, 'network', ref);
    return ref;
  }

  // ---- discovery ----------------------------------------------------------------

  /** Physical NICs: with a bus device in host mode; the stand-ins in a namespace. */
  async nics(): Promise<Nic[]> {
    if (!this.host.live) return [];
    const { links, facts } = await this.host.state();
    const out: Nic[] = [];
    for (const link of links.values()) {
      const f = facts.get(link.name) ?? {};
      // In host mode: a device on a bus, not a guest's netback device (those hang off xen-backend).
      const physical = this.mode === 'host'
        ? !link.kind && Boolean(f.busPath) && !/\/(virtual|xen-backend)\//.test(f.busPath!) && !/^(vif|tap)\d/.test(link.name) && !isOwned(link) && link.alias !== ALIAS.nic
        : link.alias === ALIAS.nic;
      if (!physical) continue;
      out.push({ device: link.name, mac: link.permMac ?? link.mac, mtu: link.mtu, link, facts: f });
    }
    return out.sort((a, b) => natural(a.device, b.device));
  }

  private async init(simNics: number): Promise<void> {
    if (this.ownsNamespace) await this.ensureStandIns(simNics);
    if (this.localPifs().length === 0) await this.firstStart(simNics);
    else await this.reconcile();
    await this.refreshMetrics();
  }

  /** In an owned namespace, the NICs the database knows (with their MACs), or eth0…ethN-1
   * on a first start, exist as stand-ins. */
  private async ensureStandIns(simNics: number): Promise<void> {
    const known = this.localPifs().filter(([, p]) => p.physical).map(([, p]) => ({ device: p.device, mac: p.MAC }));
    const wanted = known.length ? known : Array.from({ length: simNics }, (_, i) => ({ device: `eth${i}`, mac: undefined as string | undefined }));
    // A namespace made just now holds only lo.
    const links = this.freshNamespace ? new Map() : await this.host.links();
    const missing = wanted.filter((w) => !links.has(w.device));
    await createStandIns(this.host.ip, missing, [['link', 'set', 'dev', 'lo', 'alias', ownerMark(), 'up']]);
    this.host.invalidate();
    if (missing.length) this.log.debug({ devices: missing.map((m) => m.device) }, 'stand-in NICs created');
  }

  /** First start: a PIF, network and bridge for every NIC; the management one marked. */
  private async firstStart(simNics: number): Promise<void> {
    if (!this.host.live) {
      const taken = this.takenMacs();
      this.store.tx(() => {
        for (let i = 0; i < simNics; i++) {
          const device = `eth${i}`;
          const mac = randomMac(taken);
          taken.add(mac);
          const network = this.networkForBridge(bridgeForDevice(device), networkLabelForDevice(device));
          this.createPif({ device, network, MAC: mac, MTU: 1500, physical: true, currently_attached: true, management: i === 0 });
        }
      });
      this.log.info({ nics: simNics }, 'stand-in NICs recorded in the database only');
      return;
    }
    const nics = await this.nics();
    const management = this.mode === 'host' ? await this.hostManagementDevice(nics) : nics[0]?.device;
    for (const nic of nics) await this.introduceNic(nic, { management: nic.device === management, plugPolicy: this.mode === 'host' ? 'safe' : 'always' });
    this.log.info({ nics: nics.map((n) => n.device), management }, 'PIFs created for the NICs found');
  }

  /** In host mode: the NIC behind the management interface named by a Xen inventory, or
   * the one (or whose bridge) holding the host's address. */
  private async hostManagementDevice(nics: Nic[]): Promise<string | undefined> {
    let bridge: string | undefined;
    try {
      const inv = readFileSync('/etc/xensource-inventory', 'utf8');
      bridge = /^MANAGEMENT_INTERFACE='?([^'\n]*)'?/m.exec(inv)?.[1] || undefined;
    } catch {
      /* no inventory: not a XenServer-style install */
    }
    const address = this.store.field('host', this.hostRef, 'address');
    for (const nic of nics) {
      const carrierDev = nic.link.master ?? nic.device;
      if (bridge && (carrierDev === bridge || bridgeForDevice(nic.device) === bridge)) return nic.device;
      if (!bridge && address && (await this.host.addresses(carrierDev)).some((a) => a.address === address)) return nic.device;
    }
    return undefined;
  }

  /** Records a NIC as a PIF (on the network of its bridge) and, per policy, plugs it.
   * 'safe' (host mode) plugs only NICs nobody else configured: no address, no master. */
  async introduceNic(nic: Nic, opts: { management: boolean; plugPolicy: 'always' | 'safe' | 'never' }): Promise<string> {
    const bridge = bridgeForDevice(nic.device);
    // What the NIC carries now (the address sits on its bridge if it already has one).
    const carrierDev = nic.link.master ?? nic.device;
    const addrs = await this.host.addresses(carrierDev);
    const ipConfig: Partial<PIFRecord> = {};
    const first = addrs[0];
    if (first) {
      Object.assign(ipConfig, { ip_configuration_mode: first.dynamic ? 'DHCP' : 'Static', IP: first.address, netmask: netmaskOfPrefix(first.prefixlen) });
      const gw = await this.host.ip.defaultGateway().catch(() => undefined);
      if (gw && gw.dev === carrierDev) ipConfig.gateway = gw.gateway;
      if (opts.management) ipConfig.DNS = readNameservers();
    }
    const alreadyOnBridge = nic.link.master === bridge;
    const ref = this.store.tx(() => {
      const network = this.networkForBridge(bridge, networkLabelForDevice(nic.device));
      return this.createPif({
        device: nic.device, network, MAC: nic.mac, MTU: nic.mtu, physical: true,
        currently_attached: alreadyOnBridge, management: opts.management, ...ipConfig,
      });
    });
    const plug = opts.plugPolicy === 'always' || (opts.plugPolicy === 'safe' && !alreadyOnBridge && !nic.link.master && addrs.length === 0);
    if (plug) {
      const undo = this.undo();
      try {
        await this.realize(this.planOf(ref), undo);
        this.store.update('PIF', ref, { currently_attached: true });
      } catch (e) {
        await undo.run();
        this.log.error({ err: describe(e), device: nic.device }, 'could not plug the PIF of a NIC found; it stays unplugged');
      }
    } else if (!alreadyOnBridge && opts.plugPolicy === 'safe') {
      this.log.warn({ device: nic.device, master: nic.link.master, addresses: addrs.length }, 'NIC already configured outside xapid: PIF recorded unplugged (PIF.plug moves it onto its bridge)');
    }
    return ref;
  }

  /** Start of a later run: the host is made to match the database, and the database
   * records what cannot be (a NIC that vanished leaves its PIF unplugged). */
  private async reconcile(): Promise<void> {
    if (!this.host.live) return;
    const links = await this.host.links();
    const order = (p: PIFRecord) => (this.isVlanPif(p) ? 2 : this.isBondMaster(p) ? 1 : 0);
    const pifs = this.localPifs().sort(([, a], [, b]) => order(a) - order(b));
    for (const [ref, p] of pifs) {
      if (p.physical && !links.has(p.device)) {
        if (p.currently_attached) this.store.update('PIF', ref, { currently_attached: false });
        this.log.warn({ device: p.device, pif: ref }, 'the NIC of a PIF is gone: PIF marked unplugged');
        continue;
      }
      if (!p.currently_attached || p.bond_slave_of !== NULL_REF) continue;
      const undo = this.undo();
      try {
        await this.realize(this.planOf(ref), undo);
      } catch (e) {
        await undo.run();
        this.store.update('PIF', ref, { currently_attached: false });
        this.log.error({ err: describe(e), device: this.deviceOf(p), pif: ref }, 'could not bring a PIF back up: marked unplugged');
      }
    }
    // Every network's bridge exists (internal networks included).
    for (const [ref, n] of this.store.allRecords('network')) {
      if (!validIfName(n.bridge as string)) {
        this.log.warn({ bridge: n.bridge, network: ref }, 'a network\'s bridge name is not a valid interface name: no bridge made');
        continue;
      }
      try {
        const made = await this.host.ensureBridge(n.bridge as string);
        await this.host.flush();
        if (made) this.log.info({ bridge: n.bridge, network: ref }, 'bridge recreated');
      } catch (e) {
        this.log.error({ err: describe(e), bridge: n.bridge }, 'could not recreate the bridge of a network');
      }
    }
    // Devices xapid made that nothing in the database wants any more (left by a crash).
    const wanted = new Set<string>([...this.store.allRecords('network').values()].map((n) => n.bridge as string));
    for (const [, p] of this.localPifs()) if (!p.physical && p.currently_attached) wanted.add(this.deviceOf(p));
    for (const v of this.store.allRecords('VIF').values()) {
      const vm = this.store.get('VM', v.VM as string);
      if (v.currently_attached && vm && vm.power_state === 'Running') wanted.add(vifBackendName(vm.domid, v.device as string));
    }
    for (const l of (await this.host.links()).values()) {
      if (isOwned(l) && !wanted.has(l.name)) {
        this.log.info({ device: l.name }, 'removing a device xapid made that nothing uses');
        await this.host.deleteOwned(l.name).then(() => this.host.flush()).catch((err) => this.log.warn({ err: describe(err) }, 'could not remove it'));
      }
    }
  }

  // ---- bringing PIFs up and down -------------------------------------------------

  /** What a PIF needs on the host, from the database. */
  planOf(ref: string): PifPlan {
    const p = this.pif(ref);
    const plan: PifPlan = { pif: ref, bridge: this.bridgeOf(p.network), ip: ipPlanOf(p) };
    if (this.isVlanPif(p)) {
      const vlan = this.store.get('VLAN', p.VLAN_master_of)!;
      const tagged = this.pif(vlan.tagged_PIF);
      plan.vlan = { device: vlanDeviceName(tagged.device, vlan.tag), lower: tagged.device, tag: vlan.tag };
      if (this.isBondMaster(tagged)) plan.vlan.lowerBond = this.bondPlanOf(vlan.tagged_PIF);
    } else if (this.isBondMaster(p)) {
      plan.bond = this.bondPlanOf(ref);
    } else {
      plan.physical = { device: p.device };
    }
    return plan;
  }

  bondPlanOf(masterRef: string): BondPlan {
    const master = this.pif(masterRef);
    const bond = this.store.get('Bond', master.bond_master_of[0]!)!;
    const mode = master.other_config['bond-mode'] ?? 'balance-slb';
    return {
      name: master.device, mode, options: bondOptions(mode, master.other_config), mac: master.MAC,
      members: bond.slaves.map((s) => this.pif(s).device).sort(natural),
    };
  }

  /** Brings a PIF up on its bridge with its IP configuration (idempotent). Every change
   * is recorded in `undo`. */
  async realize(plan: PifPlan, undo: Undo): Promise<void> {
    const dev = await this.realizeLower(plan, undo);
    // The bridge takes the MAC of the device under it, as xapi's bridges do.
    await this.host.ensureBridge(plan.bridge, undo, (await this.host.link(dev))?.mac || undefined);
    // A bridge port carries no address of its own.
    await this.stripAddresses(dev, undo);
    await this.host.enslave(dev, plan.bridge, undo, true);
    await this.applyIp(plan.ip, plan.bridge);
    await this.host.flush();
  }

  /** The device under the bridge, made ready: the NIC, a bond, or an 802.1Q device. */
  private async realizeLower(plan: PifPlan, undo: Undo): Promise<string> {
    if (plan.vlan) {
      const { lower, device, tag, lowerBond } = plan.vlan;
      if (this.host.live && !(await this.host.link(lower))) {
        if (lowerBond) await this.realizeBond(lowerBond, undo);
        else throw new IpError(['ip', 'link', 'show', lower], 'missing', `the device ${lower} is not present`);
      }
      await this.host.setUp(lower, true, undo);
      await this.host.addVlan(device, lower, tag, undo);
      return device;
    }
    if (plan.bond) return this.realizeBond(plan.bond, undo);
    const dev = plan.physical!.device;
    if (this.host.live && !(await this.host.link(dev))) throw new IpError(['ip', 'link', 'show', dev], 'missing', `the device ${dev} is not present`);
    return dev;
  }

  /** A Linux bond with its members enslaved (members leave any bridge first). */
  async realizeBond(b: BondPlan, undo: Undo): Promise<string> {
    await this.host.addBond(b.name, LINUX_BOND_MODE[b.mode] ?? b.mode, b.options, undo);
    await this.host.setLink(b.name, { mac: b.mac }, undo);
    let present = 0;
    for (const dev of b.members) {
      const l = await this.host.link(dev);
      if (this.host.live && !l) {
        this.log.warn({ bond: b.name, device: dev }, 'a bond member NIC is not present');
        continue;
      }
      present++;
      if (l?.master === b.name) continue;
      await this.stripAddresses(dev, undo);
      // The kernel enslaves only a device that is down.
      await this.host.setUp(dev, false, undo);
      await this.host.enslave(dev, b.name, undo);
    }
    if (this.host.live && present === 0) throw new IpError(['ip', 'link', 'set', b.name, 'up'], 'missing', `no member of ${b.name} is present`);
    await this.host.setUp(b.name, true, undo);
    return b.name;
  }

  private async stripAddresses(dev: string, undo: Undo): Promise<void> {
    const old = [...(await this.host.addresses(dev))];
    if (!old.length) return;
    await this.host.setIPv4(dev, {});
    undo.push(`restore the addresses of ${dev}`, () => this.host.restoreAddresses(dev, old));
  }

  /** Takes a PIF off its bridge (its IP configuration goes with it); an 802.1Q device
   * or bond xapid made is deleted. A NIC stays up while a VLAN on it is in use. */
  async unrealize(plan: PifPlan, opts: { keepNicUp?: boolean } = {}): Promise<void> {
    await this.stopDhcp(plan.bridge);
    if (this.host.live && (await this.host.link(plan.bridge))) await this.host.setIPv4(plan.bridge, {});
    if (plan.vlan) {
      await this.host.deleteOwned(plan.vlan.device);
    } else if (plan.bond) {
      await this.host.deleteOwned(plan.bond.name);
      for (const m of plan.bond.members) await this.host.setUp(m, false);
    } else {
      const dev = plan.physical!.device;
      await this.host.release(dev);
      if (!opts.keepNicUp) await this.host.setUp(dev, false);
    }
    await this.host.flush();
  }

  /** True while an attached VLAN PIF sits on this PIF. */
  hasAttachedVlan(p: PIFRecord): boolean {
    return p.VLAN_slave_of.some((v) => {
      const untagged = this.store.field('VLAN', v, 'untagged_PIF');
      return Boolean(untagged && untagged !== NULL_REF && this.store.field('PIF', untagged, 'currently_attached'));
    });
  }

  /** Puts an IP configuration on a bridge. Static addresses are applied with `ip`; a
   * default route only for the management interface. DHCP runs a client on the bridge
   * (src/network/dhcp.ts), which puts the lease there itself; other modes stop it. */
  async applyIp(ip: IpPlan, bridge: string): Promise<void> {
    const prefixlen = ip.mode === 'Static' ? prefixOfNetmask(ip.netmask) : undefined;
    if (ip.mode === 'Static' && prefixlen === undefined) throw new XenApiError('INVALID_IP_ADDRESS_SPECIFIED', ['netmask']);
    if (ip.mode !== 'DHCP') await this.stopDhcp(bridge);
    switch (ip.mode) {
      case 'None':
        await this.host.setIPv4(bridge, {});
        break;
      case 'DHCP':
        await this.host.setIPv4(bridge, { keepDynamic: true });
        await this.host.flush();
        try {
          // The gateway and DNS servers of a lease count for the management interface only, as in xapi.
          await this.dhcp?.start(bridge, { defaultRoute: ip.management });
        } catch (e) {
          // (PIF.reconfigure_ip checks for the client first; elsewhere the PIF stays up.)
          if (!(e instanceof IpError)) throw e;
          this.log.error({ bridge, err: e.detail }, 'the PIF is in DHCP mode, but no DHCP client can run: the bridge gets no address');
        }
        break;
      case 'Static': {
        await this.host.setIPv4(bridge, { address: ip.IP, prefixlen });
        if (ip.management && ip.gateway) await this.host.setDefaultRoute(ip.gateway, bridge);
        break;
      }
    }
    await this.host.flush();
  }

  /** Stops the bridge's DHCP client, if any; it releases its lease, which takes the
   * address off, so what was read of the host is read again. */
  private async stopDhcp(bridge: string): Promise<void> {
    if (!this.dhcp) return;
    await this.host.flush();
    if (await this.dhcp.stop(bridge)) this.host.invalidate();
  }

  // ---- metrics ---------------------------------------------------------------------

  /** PIF_metrics from what the kernel reports now; written only where something changed. */
  async refreshMetrics(): Promise<void> {
    if (!this.host.live) return;
    const { links, facts } = await this.host.state();
    this.store.tx(() => {
      for (const [, p] of this.localPifs()) {
        if (!this.store.exists('PIF_metrics', p.metrics)) continue;
        const dev = this.deviceOf(p);
        const l = links.get(dev);
        const f = facts.get(dev) ?? {};
        const names = pciNames(f.vendorId, f.deviceId);
        const next: Partial<PIF_metricsRecord> = {
          carrier: Boolean(l?.up && l.carrier),
          speed: l?.up && l.carrier ? f.speed ?? 0 : 0,
          duplex: Boolean(l?.up && l.carrier && f.duplexFull),
          vendor_id: f.vendorId ?? '',
          device_id: f.deviceId ?? '',
          vendor_name: names.vendor,
          device_name: names.device,
          pci_bus_path: pciAddress(f.busPath),
        };
        const cur = this.store.get('PIF_metrics', p.metrics)!;
        const changed = (Object.keys(next) as Array<keyof typeof next>).some((k) => cur[k] !== next[k]);
        if (changed) this.store.update('PIF_metrics', p.metrics, { ...next, last_updated: now() });
      }
    });
  }

  // ---- VIFs (for the hypervisor driver and the VM power-state machine) -------------

  /** Attaches a VIF's backend interface (e.g. vif3.0) to its network's bridge, with the
   * VIF's MTU and rate limit, and records the VIF as attached. Call once the driver has
   * made the backend device. In namespace mode a missing backend (a simulated domain's)
   * gets a tap stand-in, marked "xapid:vif", that detachVif deletes; in host mode it is
   * an error. Failures are CANNOT_PLUG_VIF and undone. */
  attachVif(vifRef: string, ifname: string): Promise<void> {
    return this.exclusive(async () => {
      const vif = this.store.get('VIF', vifRef);
      if (!vif) fail('HANDLE_INVALID', 'VIF', vifRef);
      const bridge = this.bridgeOf(vif.network);
      const undo = this.undo();
      try {
        if (this.host.live && !(await this.host.link(ifname))) {
          if (this.mode !== 'namespace') throw new IpError(['ip', 'link', 'show', ifname], 'missing', `the backend device ${ifname} is not present`);
          await this.host.addTap(ifname, undo);
        }
        await this.host.ensureBridge(bridge, undo);
        await this.host.setLink(ifname, { mtu: vif.MTU > 0 ? vif.MTU : undefined, master: bridge, up: true }, undo);
        await this.host.flush();
        const kbps = rateLimitOf(vif.qos_algorithm_type, vif.qos_algorithm_params);
        if (kbps !== undefined) await this.host.setRateLimit(ifname, kbps);
        else if (vif.qos_algorithm_type) this.log.warn({ vif: vifRef, type: vif.qos_algorithm_type }, 'VIF QoS setting not supported: ignored');
      } catch (e) {
        await undo.run();
        this.log.error({ err: describe(e), vif: vifRef, ifname }, 'could not attach a VIF to its bridge');
        if (e instanceof XenApiError) throw e;
        fail('CANNOT_PLUG_VIF', vifRef);
      }
      this.store.tx(() => {
        this.store.update('VIF', vifRef, { currently_attached: true });
        updateAllowedOperations(this.store, 'VIF', vifRef);
      });
    });
  }

  /** Takes a VIF's backend interface off its bridge (if it still exists) and records
   * the VIF as detached (a driver that deleted the device passes no name). */
  detachVif(vifRef: string, ifname?: string): Promise<void> {
    return this.exclusive(async () => {
      if (!this.store.exists('VIF', vifRef)) fail('HANDLE_INVALID', 'VIF', vifRef);
      try {
        if (ifname) {
          const l = await this.host.link(ifname);
          if (l?.alias === ALIAS.vif) await this.host.deleteOwned(ifname);
          else await this.host.release(ifname);
        }
        await this.host.flush();
      } catch (e) {
        if (!(e instanceof IpError && e.kind === 'missing')) throw e;
      }
      this.store.tx(() => {
        this.store.update('VIF', vifRef, { currently_attached: false });
        updateAllowedOperations(this.store, 'VIF', vifRef);
      });
    });
  }
}

/** kbit/s of a `ratelimit` VIF QoS setting, if valid. */
export function rateLimitOf(type: string, params: Record<string, string>): number | undefined {
  if (type !== 'ratelimit') return undefined;
  const kbps = Number(params.kbps);
  return Number.isSafeInteger(kbps) && kbps > 0 ? kbps : undefined;
}

/** `ip link add type bond` options from a bond master's other_config (xapi's keys). */
export function bondOptions(mode: string, cfg: Record<string, string>): Record<string, string> {
  const num = (k: string, d: string) => (/^\d+$/.test(cfg[k] ?? '') ? cfg[k]! : d);
  const miimon = num('bond-miimon', '100');
  const opts: Record<string, string> = { miimon, updelay: num('bond-updelay', '31000'), downdelay: num('bond-downdelay', '200') };
  // The kernel wants the delays to be multiples of miimon.
  for (const k of ['updelay', 'downdelay']) opts[k] = String(Math.round(Number(opts[k]) / Number(miimon)) * Number(miimon));
  if (mode === 'lacp') opts.xmit_hash_policy = cfg['bond-hashing-algorithm'] === 'src_mac' ? 'layer2' : 'layer3+4';
  return opts;
}

/** The PCI address (0000:00:19.0) in a sysfs device path, if there is one. */
export function pciAddress(busPath: string | undefined): string {
  const parts = (busPath ?? '').split('/').filter((x) => /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(x));
  return parts.at(-1) ?? '';
}

function readNameservers(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8').split('\n').map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1]).filter(Boolean).join(',');
  } catch {
    return '';
  }
}

export function describe(e: unknown): string {
  if (e instanceof IpError) return e.message;
  if (e instanceof XenApiError) return e.description.join(' ');
  return e instanceof Error ? e.message : String(e);
}
