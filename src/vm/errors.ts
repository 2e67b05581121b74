// Driver failures as XenAPI errors: each kind of hypervisor trouble becomes the error a
// XenAPI client expects for the operation it asked for, with the hypervisor's own
// message (the xl command line and its stderr) kept in the parameters.
import { DriverError } from '../../drivers/driver.js';
import { XenApiError, toXenApiError } from '../core/errors.js';

export type VmOp =
  | 'start' | 'resume' | 'pause' | 'unpause' | 'clean_shutdown' | 'clean_reboot' | 'hard_shutdown' | 'hard_reboot'
  | 'suspend' | 'sysrq' | 'trigger' | 'vcpus' | 'memory' | 'shadow' | 'attach' | 'detach' | 'other';

export function vmError(e: unknown, vm: string, op: VmOp, device?: { type: string; ref: string }): XenApiError {
  if (e instanceof XenApiError) return e;
  if (!(e instanceof DriverError)) return toXenApiError(e);
  const msg = e.message;
  const sec = String(e.detail.timeoutSec ?? '');
  switch (e.kind) {
    case 'no-such-domain':
      return new XenApiError('VM_HALTED', [vm]);
    case 'exists':
      return new XenApiError('DOMAIN_EXISTS', [vm, String(e.detail.domid ?? '')]);
    case 'build':
      return new XenApiError('DOMAIN_BUILDER_ERROR', [e.detail.command ?? op, String(e.detail.exitCode ?? ''), msg]);
    case 'bootloader':
      return new XenApiError('BOOTLOADER_FAILED', [vm, msg]);
    case 'unknown-bootloader':
      return new XenApiError('UNKNOWN_BOOTLOADER', [vm, msg]);
    case 'no-memory':
      return new XenApiError('HOST_NOT_ENOUGH_FREE_MEMORY', [String(e.detail.needed ?? ''), String(e.detail.available ?? '')]);
    case 'no-pv-drivers':
      return new XenApiError('VM_MISSING_PV_DRIVERS', [vm]);
    case 'ack-timeout':
      return new XenApiError(op === 'suspend' ? 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT' : 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', [vm]);
    case 'timeout':
      if (op === 'clean_shutdown' || op === 'clean_reboot' || op === 'hard_shutdown') return new XenApiError('VM_SHUTDOWN_TIMEOUT', [vm, sec]);
      if (op === 'suspend') return new XenApiError('VM_SUSPEND_TIMEOUT', [vm, sec]);
      if (op === 'attach' && device) return new XenApiError('DEVICE_ATTACH_TIMEOUT', [device.type, device.ref]);
      if (op === 'detach' && device) return new XenApiError('DEVICE_DETACH_TIMEOUT', [device.type, device.ref]);
      return new XenApiError('INTERNAL_ERROR', [msg]);
    case 'device':
      if (op === 'detach' && device) return new XenApiError('DEVICE_DETACH_REJECTED', [device.type, device.ref, msg]);
      if (op === 'attach' && device && /already/.test(msg)) return new XenApiError('DEVICE_ALREADY_ATTACHED', [device.ref]);
      return new XenApiError('INTERNAL_ERROR', [msg]);
    case 'unsupported':
      return new XenApiError('OPERATION_NOT_ALLOWED', [msg]);
    case 'invalid':
      return new XenApiError('OPERATION_NOT_ALLOWED', [msg]);
    case 'failed':
    default:
      return new XenApiError('INTERNAL_ERROR', [msg]);
  }
}

/** Runs a driver call (or steps built on one) with its failure mapped by vmError. */
export async function withVmError<T>(vm: string, op: VmOp, fn: () => Promise<T>, device?: { type: string; ref: string }): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw vmError(e, vm, op, device);
  }
}
