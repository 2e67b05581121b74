// The networking messages: checks first (each refusal a precise XenAPI error, before
// anything changes), then the host (every step undone if a later one fails), then
// the database in one transaction. Host failures become PIF_CONFIGURATION_ERROR (or
// the closest code for networks and VIFs) with the iproute2 message. This file has
// networks and VIFs and what the others share; PIFs are in ./pif-ops.ts, VLANs and
// bonds in ./vlan-bond.ts.
import { classes } from '../datamodel/model.js';
import type { ApiRecord } from '../db/store.js';
import type { ObjectStore } from '../db/store.js';
import type { CallContext } from '../core/context.js';
import { XenApiError, fail } from '../core/errors.js';
import { createObject, destroyObject } from '../db/objects.js';
import { defineOperations, runOperation, updateAllowedOperations } from '../core/operations.js';
import { IpError } from './ip.js';
import type { Undo } from './host.js';
import { macFromSeed, randomMac, validIfName, validMac } from './names.js';
import { describe, takenMacs } from './state.js';
import type { NetworkService } from './service.js';

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

/** Records what the host steps made, in one transaction; if that fails, the host steps
 * are undone, so that host and database never disagree. */
export async function recordOrUndo<T>(svc: NetworkService, undo: Undo, record: () => T): Promise<T> {
  try {
    return svc.store.tx(record);
  } catch (e) {
    await undo.run();
    throw e;
  }
}

/** Undoes the host steps and turns a host failure into a XenAPI error. */
export async function hostFailure(svc: NetworkService, undo: Undo, e: unknown, code: (detail: string) => XenApiError): Promise<never> {
  await undo.run();
  if (e instanceof XenApiError) throw e;
  if (e instanceof IpError) {
    svc.log.error({ err: e.message }, 'network change failed on the host; undone');
    throw code(e.kind === 'unsupported' ? `${e.detail} (the kernel lacks this feature)` : e.detail);
  }
  throw e;
}

export const pifError = (pif: string) => (detail: string) => new XenApiError('PIF_CONFIGURATION_ERROR', [pif, detail]);

export function localPifOnNetwork(svc: NetworkService, network: string, host: string): string | undefined {
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
    return recordOrUndo(svc, undo, () => {
      const ref = createObject(svc.store, 'network', { ...rec, bridge });
      updateAllowedOperations(store, 'network', ref);
      return ref;
    });
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
