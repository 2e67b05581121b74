// The PIF messages: plug and unplug, IP configuration, NICs introduced, scanned for
// and forgotten, and VLAN PIFs destroyed. Shared checks and failure handling are
// in ./ops.ts.
import { NULL_REF } from '../datamodel/model.js';
import { fail } from '../core/errors.js';
import { bridgeForDevice, networkLabelForDevice, prefixOfNetmask, validIfName, validIPv4, validMac } from './names.js';
import { ipPlanOf, planOf, type IpPlan } from './plans.js';
import { applyIp, realize, unrealize } from './realize.js';
import { refreshMetrics } from './metrics.js';
import { introduceNic, nics } from './discovery.js';
import { awaitLease } from './leases.js';
import { hostFailure, pifError } from './ops.js';
import { removeBond, removeVlan } from './vlan-bond.js';
import type { NetworkService } from './service.js';

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
