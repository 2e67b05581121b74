// What every part of the network layer works with: the database and this host's
// reference, the mode in effect with the host's interfaces (HostNet), the DHCP clients,
// and the look-ups of PIF and network records. NetworkService (./service.ts) adds the
// life cycle, the one-at-a-time chain and the VIF entry points; the parts (discovery,
// reconcile, realize, metrics, vif-attach, leases) take a NetworkState, so the service
// can use them all without any of them needing the service.
import type { Logger } from 'pino';
import type { ObjectStore } from '../db/store.js';
import type { PIFRecord } from '../datamodel/records.js';
import { NULL_REF } from '../datamodel/model.js';
import { now } from '../core/datetime.js';
import { XenApiError, fail } from '../core/errors.js';
import { updateAllowedOperations } from '../core/operations.js';
import { IpError, IpRunner } from './ip.js';
import { HostNet, Undo } from './host.js';
import type { NetworkMode } from './namespace.js';
import { vlanDeviceName } from './names.js';
import type { DhcpClients } from './dhcp.js';

/** Where changes happen: decided once, at start. */
interface Place {
  mode: NetworkMode;
  netns?: string;
  owns: boolean;
  host: HostNet;
}

export class NetworkState {
  readonly store: ObjectStore;
  readonly log: Logger;
  readonly hostRef: string;
  /** The DHCP clients of DHCP-mode PIFs (absent in mode none). */
  dhcp?: DhcpClients;
  /** Longest wait for a first lease (see awaitLease in ./leases.ts). */
  dhcpWaitMs = 30_000;
  private readonly timeoutMs: number;
  private place: Place;

  constructor(o: { store: ObjectStore; log: Logger; hostRef: string; timeoutMs?: number }) {
    this.store = o.store;
    this.log = o.log.child({ component: 'network' });
    this.hostRef = o.hostRef;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    // Until the service has started, nothing on the host is read or changed.
    this.place = { mode: 'none', owns: false, host: this.hostNet('none', undefined) };
  }

  /** The mode in effect (none before start, and when the requested one could not be had). */
  get mode(): NetworkMode {
    return this.place.mode;
  }

  get netns(): string | undefined {
    return this.place.netns;
  }

  get ownsNamespace(): boolean {
    return this.place.owns;
  }

  get host(): HostNet {
    return this.place.host;
  }

  /** Sets where changes happen from now on (the service's start). */
  protected settle(mode: NetworkMode, netns: string | undefined, owns: boolean): void {
    this.place = { mode, netns, owns, host: this.hostNet(mode, netns) };
  }

  private hostNet(mode: NetworkMode, netns: string | undefined): HostNet {
    const ip = new IpRunner({ netns, timeoutMs: this.timeoutMs, log: this.log });
    return new HostNet(ip, mode !== 'none', this.log);
  }

  /** An undo list whose queued commands are sent, all of them, when it has run. */
  undo(): Undo {
    return new Undo(this.log, () => this.host.flush(true));
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

  /** True while an attached VLAN PIF sits on this PIF. */
  hasAttachedVlan(p: PIFRecord): boolean {
    return p.VLAN_slave_of.some((v) => {
      const untagged = this.store.field('VLAN', v, 'untagged_PIF');
      return Boolean(untagged && untagged !== NULL_REF && this.store.field('PIF', untagged, 'currently_attached'));
    });
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
}

/** Every MAC in use by a PIF or VIF, lower case. */
export function takenMacs(store: ObjectStore): Set<string> {
  const out = new Set<string>();
  for (const cls of ['PIF', 'VIF']) for (const rec of store.allRecords(cls).values()) out.add(String(rec.MAC).toLowerCase());
  return out;
}

/** A failure in a few words for the log. */
export function describe(e: unknown): string {
  if (e instanceof IpError) return e.message;
  if (e instanceof XenApiError) return e.description.join(' ');
  return e instanceof Error ? e.message : String(e);
}
