// A small JSON-RPC client for tests: call(method, ...args) with the session filled in,
// failing loudly on a XenAPI error unless the caller expects one.
import { jsonCall, login } from './daemon.js';

export interface Api {
  session: string;
  /** Returns the result; throws an Error whose `description` is the ErrorDescription. */
  call(method: string, ...args: unknown[]): Promise<any>;
  /** Returns the ErrorDescription of a call that must fail. */
  failure(method: string, ...args: unknown[]): Promise<string[]>;
}

export class XenApiFailure extends Error {
  constructor(readonly description: string[]) {
    super(description.join(' '));
  }
}

export async function connect(url: string): Promise<Api> {
  const session = await login(url);
  const call = async (method: string, ...args: unknown[]) => {
    const r = await jsonCall(url, method, [session, ...args]);
    if (r.error) throw new XenApiFailure([r.error.message, ...(r.error.data ?? [])]);
    return r.result;
  };
  const failure = async (method: string, ...args: unknown[]) => {
    const r = await jsonCall(url, method, [session, ...args]);
    if (!r.error) throw new Error(`${method} succeeded but should have failed: ${JSON.stringify(r.result)}`);
    return [r.error.message, ...(r.error.data ?? [])] as string[];
  };
  return { session, call, failure };
}

/** The smallest record VM.create accepts (every field without a default). */
export function vmRecord(name: string): Record<string, unknown> {
  return {
    name_label: name, name_description: '', user_version: 1, is_a_template: false, affinity: 'OpaqueRef:NULL',
    memory_static_max: 268435456, memory_dynamic_max: 268435456, memory_dynamic_min: 134217728, memory_static_min: 134217728,
    VCPUs_params: {}, VCPUs_max: 1, VCPUs_at_startup: 1,
    actions_after_shutdown: 'destroy', actions_after_reboot: 'restart', actions_after_crash: 'restart',
    PV_bootloader: 'pygrub', PV_kernel: '', PV_ramdisk: '', PV_args: '', PV_bootloader_args: '', PV_legacy_args: '',
    HVM_boot_policy: '', HVM_boot_params: {}, platform: {}, PCI_bus: '', other_config: {}, recommendations: '',
  };
}

export async function until<T>(probe: () => Promise<T | undefined>, what: string, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}
