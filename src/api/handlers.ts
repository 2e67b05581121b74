// The custom messages implemented so far, one module per class.
import type { Handler } from './context.js';
import { sessionHandlers } from './session.js';
import { taskHandlers } from './task.js';
import { eventHandlers } from './event.js';
import { networkHandlers } from './network.js';
import { pbdHandlers, srHandlers } from './sr.js';
import { vdiHandlers } from './vdi.js';
import { vbdHandlers, vmStorageHandlers } from './vbd.js';
import { vmHandlers } from './vm.js';
import { hostHandlers } from './host.js';

const byClass: Record<string, Record<string, Handler>> = {
  session: sessionHandlers,
  task: taskHandlers,
  event: eventHandlers,
  SR: srHandlers,
  PBD: pbdHandlers,
  VDI: vdiHandlers,
  VBD: vbdHandlers,
  VM: vmHandlers,
  host: hostHandlers,
};

export const handlers = new Map<string, Handler>([
  ...Object.entries(byClass).flatMap(([cls, hs]) => Object.entries(hs).map(([n, h]) => [`${cls}.${n}`, h] as const)),
  // Keyed by full wire name (network, PIF, VLAN, Bond, VIF, pool.create_VLAN*, VM.get_allowed_VIF_devices).
  ...Object.entries(networkHandlers),
  ...Object.entries(vmStorageHandlers).map(([n, h]) => [`VM.${n}`, h] as const),
]);
