// The VLAN and Bond messages: a VLAN's 802.1Q device on its tagged PIF, a bond of
// NICs with the IP configuration of the member that had one, and both taken apart
// again (a bond's members get their own bridges back).
import { NULL_REF } from '../datamodel/model.js';
import type { PIFRecord } from '../datamodel/records.js';
import { fail } from '../core/errors.js';
import { natural, validMac, vlanDeviceName } from './names.js';
import { bondOptions, bondPlanOf, ipPlanOf, planOf, type IpPlan, type PifPlan } from './plans.js';
import { realize, unrealize } from './realize.js';
import { hostFailure, localPifOnNetwork, pifError, recordOrUndo } from './ops.js';
import type { NetworkService } from './service.js';

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
  return recordOrUndo(svc, undo, () => {
    const untagged = svc.createPif({
      device: tagged.device, network, host: tagged.host, MAC: 'fe:ff:ff:ff:ff:ff', MTU: tagged.MTU, VLAN: tag,
      physical: false, currently_attached: true,
    });
    const vlan = store.create('VLAN', { tagged_PIF: taggedRef, untagged_PIF: untagged, tag, other_config: {} });
    store.update('PIF', untagged, { VLAN_master_of: vlan });
    return vlan;
  });
}

export function destroyVlan(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(() => removeVlan(svc, ref));
}

export async function removeVlan(svc: NetworkService, ref: string): Promise<void> {
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
    return recordOrUndo(svc, undo, () => {
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
  });
}

export function destroyBond(svc: NetworkService, ref: string): Promise<void> {
  return svc.exclusive(() => removeBond(svc, ref));
}

export async function removeBond(svc: NetworkService, ref: string): Promise<void> {
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
