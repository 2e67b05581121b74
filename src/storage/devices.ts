// VBD device names: userdevice is a number, or xvdX/hdX/sdX (X from a to p), or
// "autodetect"; one VM cannot have two VBDs on the same position in any spelling.
import type { ObjectStore } from '../db/store.js';
import { fail } from '../core/errors.js';
import { NULL_REF } from '../datamodel/model.js';

/** The position a userdevice names, or undefined when it is not a valid device. */
export function devicePosition(userdevice: string): number | undefined {
  if (/^\d+$/.test(userdevice)) {
    const n = Number(userdevice);
    return n <= 254 ? n : undefined;
  }
  const m = /^(?:xvd|hd|sd)([a-p])$/.exec(userdevice);
  return m ? m[1]!.charCodeAt(0) - 97 : undefined;
}

export function isHvm(store: ObjectStore, vm: string): boolean {
  return (store.field('VM', vm, 'HVM_boot_policy') ?? '') !== '';
}

function hasPvDrivers(store: ObjectStore, vm: string): boolean {
  const gm = store.field('VM', vm, 'guest_metrics');
  if (!gm || gm === NULL_REF || !store.exists('VM_guest_metrics', gm)) return false;
  return Object.keys(store.field('VM_guest_metrics', gm, 'PV_drivers_version') ?? {}).length > 0;
}

/** VM.get_allowed_VBD_devices: positions 0-15 (0-3 for an HVM guest without PV drivers) not taken. */
export function allowedVbdDevices(store: ObjectStore, vm: string): string[] {
  const max = isHvm(store, vm) && !hasPvDrivers(store, vm) ? 4 : 16;
  const used = new Set<number>();
  for (const vbd of store.field('VM', vm, 'VBDs') ?? []) {
    const p = devicePosition(store.field('VBD', vbd, 'userdevice') ?? '');
    if (p !== undefined) used.add(p);
  }
  const out: string[] = [];
  for (let i = 0; i < max; i++) if (!used.has(i)) out.push(String(i));
  return out;
}

/** Checks (and resolves "autodetect" in) a new VBD's userdevice for the VM. */
export function resolveUserdevice(store: ObjectStore, vm: string, userdevice: string, except?: string): string {
  if (userdevice === 'autodetect') {
    const first = allowedVbdDevices(store, vm)[0];
    if (first === undefined) fail('INVALID_DEVICE', userdevice);
    return first;
  }
  const pos = devicePosition(userdevice);
  if (pos === undefined) fail('INVALID_DEVICE', userdevice);
  for (const vbd of store.field('VM', vm, 'VBDs') ?? []) {
    if (vbd === except) continue;
    if (devicePosition(store.field('VBD', vbd, 'userdevice') ?? '') === pos) fail('DEVICE_ALREADY_EXISTS', userdevice);
  }
  return userdevice;
}

/** The device name a plugged VBD gets: xvd<letter> for PV guests, hd<letter> for HVM. */
export function deviceName(store: ObjectStore, vm: string, userdevice: string): string {
  const pos = devicePosition(userdevice);
  if (pos === undefined) return userdevice;
  if (pos >= 26) return `xvd${String.fromCharCode(97 + Math.floor(pos / 26) - 1)}${String.fromCharCode(97 + (pos % 26))}`;
  return `${isHvm(store, vm) ? 'hd' : 'xvd'}${String.fromCharCode(97 + pos)}`;
}
