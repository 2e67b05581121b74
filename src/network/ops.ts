// The networking messages: checks first (each refusal a precise XenAPI error, before
// anything changes), then the host (every step undone if a later one fails), then
// the database in one transaction. Host failures become PIF_CONFIGURATION_ERROR (or
// the closest code for networks and VIFs) with the iproute2 message.
import { classes, NULL_REF } from '../datamodel/model.js';
import type { ApiRecord } from '../db/store.js';
import type { ObjectStore } from '../db/store.js';
import type { PIFRecord } from '../datamodel/records.js';
import type { CallContext } from '../core/context.js';
import { XenApiError, fail } from '../core/errors.js';
import { createObject, destroyObject } from '../db/objects.js';
import { defineOperations, runOperation, updateAllowedOperations } from '../core/operations.js';
import { IpError } from './ip.js';
import type { Undo } from './host.js';
import { bridgeForDevice, macFromSeed, networkLabelForDevice, prefixOfNetmask, randomMac, validIfName, validIPv4, validMac, vlanDeviceName } from './names.js';
import { natural } from './names.js';
import { bondOptions, bondPlanOf, ipPlanOf, planOf, type IpPlan, type PifPlan } from './plans.js';
import { applyIp, realize, unrealize } from './realize.js';
import { refreshMetrics } from './metrics.js';
import { introduceNic, nics } from './discovery.js';
import { describe, takenMacs } from './state.js';
import type { NetworkService } from './service.js';
import { awaitLease } from './leases.js';

// ---- operations (allowed_operations / current_operations) ---------------------------

const lowerState = (s: string | undefined) => (s ?? '').toLowerCase();

defineOperations('VIF', {
  ops: ['attach', 'plug', 'unplug'],
  check(store, ref, op) {
    const vif = store.get('VIF', ref);
    if (!vif) return new XenApiError('HANDLE_INVALID', ['VIF', ref]);
    if (op === 'plug' || op === 'unplug') {
      const vm = store.get('VM', vif.VM);
      if (!vm) return new XenApiError('HANDLE_INVALID', ['VM', vif.VM]);
      if (vm.power_state !== 'Running') return new XenApiError('VM_BAD_POWER_STATE', [vif.VM, 'running', lowerState(vm.power_state)]);
    }
    if ((op === 'plug' || op === 'attach') && vif.currently_attached) return new XenApiError('DEVICE_ALREADY_ATTACHED', [ref]);
    if (op === 'unplug' && !vif.currently_attached) return new XenApiError('DEVICE_ALREADY_DETACHED', [ref]);
    return undefined;
  },
});

defineOperations('network', { ops: ['attaching'], check: () => undefined });

// ---- helpers ------------------------------------------------------------------------

/** A constructor's required fields must be given (as the generic create insists). */
function assertRequired(cls: string, rec: ApiRecord): void {
  for (const f of classes.get(cls)!.storedFields) {
    const settable = f.qualifier === 'RW' || f.qualifier === 'RO/constructor';
    if (f.required && settable && !(f.name in rec)) fail('FIELD_TYPE_ERROR', f.name);
  }
}

/** Undoes the host steps and turns a host failure into a XenAPI error. */
async function hostFailure(svc: NetworkService, undo: Undo, e: unknown, code: (detail: string) => XenApiError): Promise<never> {
  await undo.run();
  if (e instanceof XenApiError) throw e;
  if (e instanceof IpError) {
    svc.log.error({ err: e.message }, 'network change failed on the host; undone');
    throw code(e.kind === 'unsupported' ? `${e.detail} (the kernel lacks this feature)` : e.detail);
  }
  throw e;
}

const pifError = (pif: string) => (detail: string) => new XenApiError('PIF_CONFIGURATION_ERROR', [pif, detail]);

function localPifOnNetwork(svc: NetworkService, network: string, host: string): string | undefined {
  return svc.store.field('network', network, 'PIFs')?.find((p) => svc.store.field('PIF', p, 'host') === host);
}

// ---- network ------------------------------------------------------------------------

export function createNetwork(svc: NetworkService, ctx: CallContext, rec: ApiRecord): Promise<string> {
  assertRequired('network', rec);
  return svc.exclusive(async () => {
    const store = svc.store;
    const used = new Set([...store.allRecords('network').values()].map((n) => n.bridge as string));
    const links = await svc.host.links();
    let bridge = String(rec.bridge ?? '');
    if (bridge === '') {
      let n = 0;
      while (used.has(`xapi${n}`) || links.has(`xapi${n}`)) n++;
      bridge = `xapi${n}`;
    } else {
      if (!validIfName(bridge)) fail('INVALID_VALUE', 'bridge', bridge);
      if (used.has(bridge) || links.has(bridge)) fail('BRIDGE_NAME_EXISTS', bridge);
    }
    const undo = svc.undo();
    try {
      await svc.host.ensureBridge(bridge, undo);
      await svc.host.flush();
    } catch (e) {
      await hostFailure(svc, undo, e, () => new XenApiError('BRIDGE_NOT_AVAILABLE', [bridge]));
    }
    try {
      return store.tx(() => {
        const ref = createObject(svc.store, 'network', { ...rec, bridge });
        updateAllowedOperations(store, 'network', ref);
        return ref;
      });
    } catch (e) {
      await undo.run();
      throw e;
    }
  });
}

export function destroyNetwork(svc: NetworkService, ctx: CallContext, ref: string): Promise<void> {
  return svc.exclusive(async () => {
    const n = svc.store.get('network', ref);
    if (!n) fail('HANDLE_INVALID', 'network', ref);
    if (n.VIFs.length) fail('NETWORK_CONTAINS_VIF', ...n.VIFs);
    if (n.PIFs.length) fail('NETWORK_CONTAINS_PIF', ...n.PIFs);
    destroyObject(svc.store, 'network', ref);
    try {
      await svc.host.deleteOwned(n.bridge);
      await svc.host.flush();
    } catch (e) {
      // The record is gone; a bridge left behind is removed at the next start.
      svc.log.warn({ err: describe(e), bridge: n.bridge }, 'could not delete the bridge of a destroyed network');
    }
  });
}

// ---- PIF ----------------------------------------------------------------------------

export function plugPif(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(async () => {
    const p = svc.pif(ref);
    if (p.bond_slave_of !== NULL_REF) fail('CANNOT_PLUG_BOND_SLAVE', ref);
    const undo = svc.undo();
    try {
      await realize(svc, planOf(svc, ref), undo);
    } catch (e) {
      await hostFailure(svc, undo, e, pifError(ref));
    }
    if (!p.currently_attached) svc.store.update('PIF', ref, { currently_attached: true });
    await refreshMetrics(svc).catch(() => undefined);
    await awaitLease(svc, ref);
  });
}

export function unplugPif(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(async () => {
    const p = svc.pif(ref);
    if (p.management) fail('PIF_IS_MANAGEMENT_INTERFACE', ref);
    if (!p.currently_attached) return;
    try {
      await unrealize(svc, planOf(svc, ref), { keepNicUp: svc.hasAttachedVlan(p) });
    } catch (e) {
      await hostFailure(svc, svc.undo(), e, pifError(ref));
    }
    svc.store.update('PIF', ref, { currently_attached: false });
    await refreshMetrics(svc).catch(() => undefined);
  });
}

/** Checks an IP configuration as xapi does: Static needs an address and netmask; any
 * non-empty address, netmask or gateway must be valid. */
export function checkIpConfig(mode: string, IP: string, netmask: string, gateway: string): void {
  if (mode === 'Static') {
    if (!validIPv4(IP)) fail('INVALID_IP_ADDRESS_SPECIFIED', 'IP');
    if (prefixOfNetmask(netmask) === undefined) fail('INVALID_IP_ADDRESS_SPECIFIED', 'netmask');
  }
  if (IP !== '' && !validIPv4(IP)) fail('INVALID_IP_ADDRESS_SPECIFIED', 'IP');
  if (netmask !== '' && prefixOfNetmask(netmask) === undefined) fail('INVALID_IP_ADDRESS_SPECIFIED', 'netmask');
  if (gateway !== '' && !validIPv4(gateway)) fail('INVALID_IP_ADDRESS_SPECIFIED', 'gateway');
}

export function reconfigureIp(svc: NetworkService, ref: string, mode: IpPlan['mode'], IP: string, netmask: string, gateway: string, DNS: string): Promise<void> {
  return svc.exclusive(async () => {
    const p = svc.pif(ref);
    checkIpConfig(mode, IP, netmask, gateway);
    if (mode === 'None' && p.management) fail('PIF_IS_MANAGEMENT_INTERFACE', ref);
    if (p.bond_slave_of !== NULL_REF) fail('PIF_ALREADY_BONDED', ref);
    if (p.currently_attached) {
      const bridge = svc.bridgeOf(p.network);
      try {
        // No DHCP client to run is an error here, before anything changes.
        if (mode === 'DHCP') svc.dhcp?.tools();
        await applyIp(svc, { mode, IP, netmask, gateway, management: p.management }, bridge);
      } catch (e) {
        const undo = svc.undo();
        undo.push('restore the previous IP configuration', () => applyIp(svc, ipPlanOf(p), bridge));
        await hostFailure(svc, undo, e, pifError(ref));
      }
    }
    svc.store.tx(() => {
      svc.store.update('PIF', ref, { ip_configuration_mode: mode, IP, netmask, gateway, DNS });
      if (p.management && mode === 'Static' && svc.mode === 'host') svc.store.update('host', p.host, { address: IP });
    });
    // DHCP: the call returns with the first lease, or without one once the client has
    // tried for a while (no error, as in xapi: the address comes later).
    await awaitLease(svc, ref);
  });
}

export function introducePif(svc: NetworkService, host: string, MAC: string, device: string): Promise<string> {
  return svc.exclusive(async () => {
    const mac = MAC.toLowerCase();
    if (!validMac(mac)) fail('MAC_INVALID', MAC);
    if (!validIfName(device)) fail('INVALID_VALUE', 'device', device);
    if (svc.localPifs().some(([, p]) => p.device === device && p.host === host)) fail('DUPLICATE_PIF_DEVICE_NAME', device);
    if (!svc.host.live) {
      // Database only: nothing to look the NIC up in.
      const network = svc.networkForBridge(bridgeForDevice(device), networkLabelForDevice(device));
      return svc.createPif({ device, network, host, MAC: mac, MTU: 1500, physical: true, currently_attached: false });
    }
    const nic = (await nics(svc)).find((n) => n.mac === mac);
    if (!nic) fail('MAC_DOES_NOT_EXIST', mac);
    if (nic.device !== device) fail('PIF_DEVICE_NOT_FOUND');
    return introduceNic(svc, nic, { management: false, plugPolicy: svc.mode === 'host' ? 'safe' : 'always' });
  });
}

export function scanPifs(svc: NetworkService): Promise<void> {
  return svc.exclusive(async () => {
    const known = new Set(svc.localPifs().filter(([, p]) => p.physical).map(([, p]) => p.device));
    for (const nic of await nics(svc)) {
      if (known.has(nic.device)) continue;
      await introduceNic(svc, nic, { management: false, plugPolicy: svc.mode === 'host' ? 'safe' : 'always' });
      svc.log.info({ device: nic.device }, 'PIF.scan found a new NIC');
    }
    await refreshMetrics(svc);
  });
}

export function forgetPif(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(async () => {
    const p = svc.pif(ref);
    if (p.management) fail('PIF_IS_MANAGEMENT_INTERFACE', ref);
    if (p.VLAN_slave_of.length) fail('PIF_VLAN_STILL_EXISTS', ref);
    if (p.bond_slave_of !== NULL_REF) fail('PIF_ALREADY_BONDED', ref);
    if (svc.isVlanPif(p)) return removeVlan(svc, p.VLAN_master_of);
    if (svc.isBondMaster(p)) return removeBond(svc, p.bond_master_of[0]!);
    if (p.currently_attached) {
      try {
        await unrealize(svc, planOf(svc, ref));
      } catch (e) {
        await hostFailure(svc, svc.undo(), e, pifError(ref));
      }
    }
    svc.destroyPif(ref);
  });
}

export function destroyPif(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(async () => {
    const p = svc.pif(ref);
    if (!svc.isVlanPif(p)) fail('PIF_IS_PHYSICAL', ref);
    return removeVlan(svc, p.VLAN_master_of);
  });
}

// ---- VLAN ---------------------------------------------------------------------------

export function createVlan(svc: NetworkService, tagged: string, tag: number, network: string): Promise<string> {
  return svc.exclusive(() => addVlan(svc, tagged, tag, network));
}

/** PIF.create_VLAN: the VLAN goes on the host's untagged PIF of that device. */
export function createVlanOnDevice(svc: NetworkService, device: string, network: string, host: string, tag: number): Promise<string> {
  return svc.exclusive(async () => {
    checkTag(tag);
    const onHost = svc.localPifs().filter(([, p]) => p.host === host);
    if (onHost.some(([, p]) => p.device === device && p.VLAN === tag)) fail('PIF_VLAN_EXISTS', device);
    const candidates = onHost.filter(([, p]) => p.device === device && p.VLAN === -1);
    if (candidates.length !== 1) fail('INVALID_VALUE', 'device', device);
    const vlan = await addVlan(svc, candidates[0]![0], tag, network);
    return svc.store.field('VLAN', vlan, 'untagged_PIF')!;
  });
}

function checkTag(tag: number): void {
  if (!Number.isInteger(tag) || tag < 0 || tag > 4094) fail('VLAN_TAG_INVALID', tag);
}

async function addVlan(svc: NetworkService, taggedRef: string, tag: number, network: string): Promise<string> {
  const store = svc.store;
  checkTag(tag);
  const tagged = svc.pif(taggedRef);
  if (!store.exists('network', network)) fail('HANDLE_INVALID', 'network', network);
  if (svc.isVlanPif(tagged) || tagged.VLAN >= 0) fail('PIF_IS_VLAN', taggedRef);
  if (tagged.bond_slave_of !== NULL_REF) fail('CANNOT_ADD_VLAN_TO_BOND_SLAVE', taggedRef);
  const sameTag = [...store.allRecords('PIF').values()].some((p) => p.host === tagged.host && p.device === tagged.device && p.VLAN === tag);
  if (sameTag) fail('PIF_VLAN_EXISTS', tagged.device);
  const connected = localPifOnNetwork(svc, network, tagged.host);
  if (connected) fail('NETWORK_ALREADY_CONNECTED', network, connected);

  const plan: PifPlan = {
    bridge: svc.bridgeOf(network),
    ip: { mode: 'None', IP: '', netmask: '', gateway: '', management: false },
    vlan: { device: vlanDeviceName(tagged.device, tag), lower: tagged.device, tag, lowerBond: svc.isBondMaster(tagged) ? bondPlanOf(svc, taggedRef) : undefined },
  };
  const undo = svc.undo();
  try {
    await realize(svc, plan, undo);
  } catch (e) {
    await hostFailure(svc, undo, e, pifError(taggedRef));
  }
  try {
    return store.tx(() => {
      const untagged = svc.createPif({
        device: tagged.device, network, host: tagged.host, MAC: 'fe:ff:ff:ff:ff:ff', MTU: tagged.MTU, VLAN: tag,
        physical: false, currently_attached: true,
      });
      const vlan = store.create('VLAN', { tagged_PIF: taggedRef, untagged_PIF: untagged, tag, other_config: {} });
      store.update('PIF', untagged, { VLAN_master_of: vlan });
      return vlan;
    });
  } catch (e) {
    await undo.run();
    throw e;
  }
}

export function destroyVlan(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(() => removeVlan(svc, ref));
}

async function removeVlan(svc: NetworkService, ref: string): Promise<void> {
  const vlan = svc.store.get('VLAN', ref);
  if (!vlan) fail('HANDLE_INVALID', 'VLAN', ref);
  const untagged = vlan.untagged_PIF;
  const p = svc.store.get('PIF', untagged);
  if (p?.management) fail('PIF_IS_MANAGEMENT_INTERFACE', untagged);
  if (p) {
    try {
      await unrealize(svc, planOf(svc, untagged));
    } catch (e) {
      await hostFailure(svc, svc.undo(), e, pifError(untagged));
    }
  }
  svc.store.tx(() => {
    if (p) svc.destroyPif(untagged);
    svc.store.destroy('VLAN', ref);
  });
}

// ---- Bond ---------------------------------------------------------------------------

const BOND_PROPERTIES: Record<string, (v: string) => boolean> = {
  hashing_algorithm: (v) => v === 'src_mac' || v === 'tcpudp_ports',
  miimon: (v) => /^\d+$/.test(v),
  updelay: (v) => /^\d+$/.test(v),
  downdelay: (v) => /^\d+$/.test(v),
};

export function createBond(svc: NetworkService, network: string, members: string[], MAC: string, mode: string, properties: Record<string, string>): Promise<string> {
  return svc.exclusive(async () => {
    const store = svc.store;
    if (members.length < 2) fail('PIF_BOND_NEEDS_MORE_MEMBERS');
    const recs: Array<[string, PIFRecord]> = members.map((m) => [m, svc.pif(m)]);
    for (const [ref, p] of recs) {
      if (p.bond_slave_of !== NULL_REF || svc.isBondMaster(p)) fail('PIF_ALREADY_BONDED', ref);
      if (svc.isVlanPif(p)) fail('PIF_IS_VLAN', ref);
      if (p.VLAN_slave_of.length) fail('PIF_VLAN_EXISTS', p.device);
    }
    const host = recs[0]![1].host;
    if (recs.some(([, p]) => p.host !== host)) fail('PIF_CANNOT_BOND_CROSS_HOST');
    const connected = localPifOnNetwork(svc, network, host);
    if (connected) fail('NETWORK_ALREADY_CONNECTED', network, connected);
    let mac = MAC.toLowerCase();
    if (mac === '') mac = recs[0]![1].MAC;
    else if (!validMac(mac)) fail('MAC_INVALID', MAC);
    for (const [k, v] of Object.entries(properties)) {
      const ok = BOND_PROPERTIES[k];
      if (ok && !ok(v)) fail('INVALID_VALUE', k, v);
    }
    const withIp = recs.filter(([, p]) => p.ip_configuration_mode !== 'None');
    if (withIp.length > 1) fail('PIF_BOND_MORE_THAN_ONE_IP');

    // The first free bondN on this host.
    const links = await svc.host.links();
    const devices = new Set(svc.localPifs().map(([, p]) => p.device));
    let n = 0;
    while (devices.has(`bond${n}`) || links.has(`bond${n}`)) n++;
    const name = `bond${n}`;
    const source = withIp[0]?.[1];
    const management = recs.some(([, p]) => p.management);
    const ip: IpPlan = source ? { ...ipPlanOf(source), management } : { mode: 'None', IP: '', netmask: '', gateway: '', management };
    const otherConfig: Record<string, string> = { 'bond-mode': mode };
    for (const [k, v] of Object.entries(properties)) if (BOND_PROPERTIES[k]) otherConfig[`bond-${k.replace('_', '-')}`] = v;
    const plan: PifPlan = {
      bridge: svc.bridgeOf(network), ip,
      bond: { name, mode, options: bondOptions(mode, otherConfig), mac, members: recs.map(([, p]) => p.device).sort(natural) },
    };

    const undo = svc.undo();
    try {
      // Members leave their own bridges first (and get them back if anything fails).
      for (const [ref, p] of recs) {
        if (!p.currently_attached) continue;
        const own = planOf(svc, ref);
        await unrealize(svc, own);
        undo.push(`plug ${p.device} back onto ${own.bridge}`, () => realize(svc, own, svc.undo()));
      }
      await realize(svc, plan, undo);
    } catch (e) {
      await hostFailure(svc, undo, e, pifError(members[0]!));
    }
    try {
      return store.tx(() => {
        const first = recs[0]![1];
        const master = svc.createPif({
          device: name, network, host, MAC: mac, MTU: first.MTU, VLAN: -1, physical: false, currently_attached: true,
          ip_configuration_mode: ip.mode, IP: ip.IP, netmask: ip.netmask, gateway: ip.gateway, DNS: source?.DNS ?? '',
          management, other_config: otherConfig,
        });
        const bond = store.create('Bond', { master, other_config: {} });
        for (const [ref] of recs) {
          store.update('PIF', ref, { bond_slave_of: bond, currently_attached: false, management: false, ip_configuration_mode: 'None', IP: '', netmask: '', gateway: '', DNS: '' });
        }
        return bond;
      });
    } catch (e) {
      await undo.run();
      throw e;
    }
  });
}

export function destroyBond(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(() => removeBond(svc, ref));
}

async function removeBond(svc: NetworkService, ref: string): Promise<void> {
  const store = svc.store;
  const bond = store.get('Bond', ref);
  if (!bond) fail('HANDLE_INVALID', 'Bond', ref);
  const masterRef = bond.master;
  const master = svc.pif(masterRef);
  if (master.VLAN_slave_of.length) fail('PIF_VLAN_STILL_EXISTS', masterRef);
  // The member with the bond's MAC (else the first by name) takes the IP configuration back.
  const slaves = bond.slaves.map((s) => [s, svc.pif(s)] as [string, PIFRecord]).sort(([, a], [, b]) => natural(a.device, b.device));
  const primary = (slaves.find(([, p]) => p.MAC === master.MAC) ?? slaves[0])?.[0];
  const bondPlan = planOf(svc, masterRef);
  const undo = svc.undo();
  try {
    if (master.currently_attached) {
      await unrealize(svc, bondPlan);
      undo.push(`rebuild ${master.device}`, () => realize(svc, bondPlan, svc.undo()));
    }
    for (const [s, p] of slaves) {
      const own: PifPlan = { pif: s, bridge: svc.bridgeOf(p.network), ip: s === primary ? { ...ipPlanOf(master) } : ipPlanOf({ ...p, ip_configuration_mode: 'None' }), physical: { device: p.device } };
      await realize(svc, own, undo);
      undo.push(`take ${p.device} off ${own.bridge}`, () => unrealize(svc, own));
    }
  } catch (e) {
    await hostFailure(svc, undo, e, pifError(masterRef));
  }
  store.tx(() => {
    for (const [s] of slaves) {
      const back: Partial<PIFRecord> = { bond_slave_of: NULL_REF, currently_attached: true };
      if (s === primary) {
        Object.assign(back, { ip_configuration_mode: master.ip_configuration_mode, IP: master.IP, netmask: master.netmask, gateway: master.gateway, DNS: master.DNS, management: master.management });
      }
      store.update('PIF', s, back);
    }
    store.destroy('Bond', ref);
    svc.destroyPif(masterRef);
  });
}

// ---- VIF ----------------------------------------------------------------------------

/** Device numbers a VM's VIFs may take (xapi allows 0–6 for PV and HVM guests). */
export const VIF_DEVICES = ['0', '1', '2', '3', '4', '5', '6'];

export function allowedVifDevices(store: ObjectStore, vm: string): string[] {
  const used = new Set((store.field('VM', vm, 'VIFs') ?? []).map((v) => Number(store.field('VIF', v, 'device'))));
  return VIF_DEVICES.filter((d) => !used.has(Number(d)));
}

export function createVif(store: ObjectStore, rec: ApiRecord): string {
  assertRequired('VIF', rec);
  const vm = String(rec.VM);
  const network = String(rec.network);
  if (!store.exists('VM', vm)) fail('HANDLE_INVALID', 'VM', vm);
  if (!store.exists('network', network)) fail('HANDLE_INVALID', 'network', network);
  const device = String(rec.device);
  if (!/^\d+$/.test(device)) fail('INVALID_DEVICE', device);
  const mtu = Number(rec.MTU);
  if (mtu !== 0 && (mtu < 68 || mtu > 65535)) fail('INVALID_VALUE', 'MTU', String(rec.MTU));
  return store.tx(() => {
    const siblings = store.field('VM', vm, 'VIFs') ?? [];
    if (siblings.some((v) => Number(store.field('VIF', v, 'device')) === Number(device))) fail('DEVICE_ALREADY_EXISTS', device);
    let mac = String(rec.MAC ?? '').toLowerCase();
    if (mac === '') {
      const seed = store.field('VM', vm, 'other_config')?.mac_seed;
      mac = seed ? macFromSeed(seed, Number(device)) : randomMac(takenMacs(store));
    } else if (!validMac(mac)) {
      fail('MAC_INVALID', rec.MAC);
    }
    const ref = createObject(store, 'VIF', { ...rec, MAC: mac });
    store.update('VIF', ref, { qos_supported_algorithms: ['ratelimit'], status_code: 0, status_detail: '', runtime_properties: {} });
    updateAllowedOperations(store, 'VIF', ref);
    return ref;
  });
}

export function destroyVif(store: ObjectStore, ref: string): void {
  const vif = store.get('VIF', ref);
  if (!vif) fail('HANDLE_INVALID', 'VIF', ref);
  if (vif.currently_attached && store.field('VM', vif.VM, 'power_state') === 'Running') {
    fail('OPERATION_NOT_ALLOWED', 'VIF currently attached to a running VM');
  }
  destroyObject(store, 'VIF', ref);
}

/** VIF.plug: checks (power state, already attached) run first; the hypervisor driver
 * makes the backend, which is then attached to the bridge. */
export function plugVif(svc: NetworkService, ctx: CallContext, ref: string): Promise<void> {
  return runOperation(svc.store, ctx, 'VIF', ref, 'plug', async () => {
    const hotplug = svc.hotplug;
    const vm = svc.store.field('VIF', ref, 'VM')!;
    const ifname = await hotplug.plug(vm, ref);
    try {
      await svc.attachVif(ref, ifname);
    } catch (e) {
      await hotplug.unplug(vm, ref).catch((err) => svc.log.warn({ err: describe(err) }, 'could not remove a VIF backend after a failed attach'));
      throw e;
    }
  });
}

export function unplugVif(svc: NetworkService, ctx: CallContext, ref: string): Promise<void> {
  return runOperation(svc.store, ctx, 'VIF', ref, 'unplug', async () => {
    const hotplug = svc.hotplug;
    const vm = svc.store.field('VIF', ref, 'VM')!;
    await hotplug.unplug(vm, ref);
    await svc.detachVif(ref);
  });
}
