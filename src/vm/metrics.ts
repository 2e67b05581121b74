// host_metrics memory, VM_metrics and VM_guest_metrics, kept from what the driver
// reports: on every domain change the VM's records follow, and on a timer for what
// changes without an event (memory, VCPU placement, the guest agent's xenstore keys).
import type { DomainInfo, HostFacts } from '../../drivers/driver.js';
import { now } from '../core/datetime.js';
import { updateAllowedOperations } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VmState } from './state.js';

export class VmMetrics {
  private timer?: NodeJS.Timeout;

  constructor(private readonly s: VmState) {}

  /** Refreshes everything every metricsIntervalMs until the service closes. */
  startTimer(): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.refreshAll().finally(() => !this.s.closed && tick());
      }, this.s.opts.metricsIntervalMs);
      this.timer.unref();
    };
    tick();
  }

  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** VM_metrics from the domain; `fresh` (a new boot) sets start_time too. */
  update(vm: string, dom: DomainInfo, fresh = false): void {
    const store = this.s.store;
    const m = store.field('VM', vm, 'metrics');
    if (!m || m === NULL_REF || !store.exists('VM_metrics', m)) return;
    const cur = store.get('VM_metrics', m)!;
    const vcpuCpu = Object.fromEntries(Object.entries(dom.vcpuCpu).map(([k, v]) => [k, v]));
    const next = {
      memory_actual: dom.memoryBytes,
      VCPUs_number: dom.vcpus,
      VCPUs_CPU: vcpuCpu,
      VCPUs_params: store.field('VM', vm, 'VCPUs_params') ?? {},
      state: [dom.state],
    };
    const same = cur.memory_actual === next.memory_actual && cur.VCPUs_number === next.VCPUs_number
      && JSON.stringify(cur.VCPUs_CPU) === JSON.stringify(next.VCPUs_CPU) && JSON.stringify(cur.VCPUs_params) === JSON.stringify(next.VCPUs_params)
      && JSON.stringify(cur.state) === JSON.stringify(next.state);
    if (same && !fresh) return;
    store.update('VM_metrics', m, { ...next, ...(fresh ? { start_time: now() } : {}), last_updated: now() });
  }

  /** The host's memory as the hypervisor counts it (dom0's /proc sees only dom0's share). */
  async refreshHost(): Promise<void> {
    const { store, hostRef } = this.s;
    let f: HostFacts;
    try {
      f = await this.s.driver.host();
    } catch (e) {
      this.s.log.warn({ err: (e as Error).message }, 'metrics: reading the host\'s facts failed');
      return;
    }
    const metrics = store.field('host', hostRef, 'metrics');
    if (!metrics || !store.exists('host_metrics', metrics)) return;
    if (store.field('host_metrics', metrics, 'memory_total') === f.totalMemoryBytes) return;
    store.update('host_metrics', metrics, { memory_total: f.totalMemoryBytes, last_updated: now() });
  }

  private async refreshAll(): Promise<void> {
    const { store, driver } = this.s;
    await this.refreshHost();
    let domains: DomainInfo[];
    try {
      domains = await driver.list();
    } catch (e) {
      this.s.log.warn({ err: (e as Error).message }, 'metrics: listing domains failed');
      return;
    }
    for (const d of domains) {
      const vm = store.refByUuid('VM', d.uuid);
      if (!vm || this.s.isBusy(vm)) continue;
      const rec = store.get('VM', vm);
      if (!rec || rec.domid !== d.domid) continue;
      this.update(vm, d);
      if (driver.name !== 'sim') await this.refreshGuest(vm, d.domid).catch(() => undefined);
    }
  }

  /** VM_guest_metrics from what the guest's agent wrote into xenstore. */
  async refreshGuest(vm: string, domid: number): Promise<void> {
    const store = this.s.store;
    const rec = store.get('VM', vm);
    if (!rec || rec.domid !== domid) return;
    const kv = await this.s.driver.xenstoreList(`/local/domain/${domid}`);
    const os: Record<string, string> = {};
    const pv: Record<string, string> = {};
    const networks: Record<string, string> = {};
    const other: Record<string, string> = {};
    const osKeys: Record<string, string> = { os_name: 'name', os_uname: 'uname', os_distro: 'distro', os_majorver: 'major', os_minorver: 'minor' };
    const pvKeys: Record<string, string> = { MajorVersion: 'major', MinorVersion: 'minor', MicroVersion: 'micro', BuildVersion: 'build' };
    for (const [k, v] of Object.entries(kv)) {
      let m: RegExpExecArray | null;
      if ((m = /^data\/(os_\w+)$/.exec(k)) && osKeys[m[1]!]) os[osKeys[m[1]!]!] = v;
      else if ((m = /^attr\/PVAddons\/(\w+)$/.exec(k)) && pvKeys[m[1]!]) pv[pvKeys[m[1]!]!] = v;
      else if ((m = /^attr\/eth(\d+)\/ip$/.exec(k))) networks[`${m[1]}/ip`] = v;
      else if ((m = /^attr\/eth(\d+)\/ipv6\/(\d+)\/addr$/.exec(k))) networks[`${m[1]}/ipv6/${m[2]}`] = v;
      else if ((m = /^data\/(meminfo_\w+|updated)$/.exec(k))) other[m[1]!] = v;
    }
    if (!Object.keys(os).length && !Object.keys(pv).length && !Object.keys(networks).length) return;
    const next = { os_version: os, PV_drivers_version: pv, PV_drivers_up_to_date: Number(pv.major ?? 0) >= 1, networks, other };
    store.tx(() => {
      const cur = store.field('VM', vm, 'guest_metrics')!;
      if (cur !== NULL_REF && store.exists('VM_guest_metrics', cur)) {
        const old = store.get('VM_guest_metrics', cur)!;
        const same = JSON.stringify([old.os_version, old.PV_drivers_version, old.PV_drivers_up_to_date, old.networks, old.other])
          === JSON.stringify([next.os_version, next.PV_drivers_version, next.PV_drivers_up_to_date, next.networks, next.other]);
        if (!same) store.update('VM_guest_metrics', cur, { ...next, last_updated: now() });
      } else {
        const gm = store.create('VM_guest_metrics', { ...next, last_updated: now() });
        store.update('VM', vm, { guest_metrics: gm });
        updateAllowedOperations(store, 'VM', vm);
      }
    });
  }
}
