// The VM service: the VM power-state machine and everything that keeps VM records in line
// with the hypervisor; the only user of the driver. It is made of parts, one job each,
// that share one VmState (state.ts):
//   boot     start/start_on, resume/resume_on, the build and rebuild of a domain (boot.ts)
//   power    pause/unpause, clean and hard shutdown and reboot, suspend, power_state_reset (power.ts)
//   live     changes to a running domain, sysrq and triggers (live.ts)
//   events   domain changes the guest made itself, actions_after_* (domain-events.ts)
//   records  the bookkeeping of domains starting and stopping (records.ts)
//   metrics  host_metrics, VM_metrics and VM_guest_metrics (metrics.ts)
//   lifecycle  create/destroy, clone/copy/provision, setters, host and memory questions (lifecycle.ts)
// plus the reconciliation at start (reconcile.ts). The API layer calls the parts directly.
// This file makes them, and opens and closes the service.
import { ensureDefaultTemplates } from './templates.js';
import { VmBoot } from './boot.js';
import { VmDomainEvents } from './domain-events.js';
import { VmLifecycle } from './lifecycle.js';
import { VmLive } from './live.js';
import { VmMetrics } from './metrics.js';
import { VmPower } from './power.js';
import { reconcile } from './reconcile.js';
import { VmRecords } from './records.js';
import { defineVmOperations } from './rules.js';
import { VmState, type VmServiceDeps } from './state.js';

export class VmService {
  readonly state: VmState;
  readonly metrics: VmMetrics;
  readonly records: VmRecords;
  readonly boot: VmBoot;
  readonly power: VmPower;
  readonly live: VmLive;
  readonly events: VmDomainEvents;
  readonly lifecycle: VmLifecycle;
  private unsubscribe?: () => void;

  constructor(opts: VmServiceDeps) {
    defineVmOperations();
    // The state asks the events part to look at a VM again when its last operation ends.
    this.state = new VmState(opts, (vm) => this.events.resync(vm));
    this.metrics = new VmMetrics(this.state);
    this.records = new VmRecords(this.state, this.metrics);
    this.boot = new VmBoot(this.state, this.records);
    this.power = new VmPower(this.state, this.records, this.boot);
    this.live = new VmLive(this.state, this.metrics);
    this.events = new VmDomainEvents(this.state, this.records, this.metrics, this.boot);
    this.lifecycle = new VmLifecycle(this.state, this.boot);
  }

  async open(): Promise<void> {
    const s = this.state;
    await s.driver.open();
    await this.metrics.refreshHost();
    const made = ensureDefaultTemplates(s.store);
    if (made) s.log.info({ templates: made }, 'default templates created');
    await reconcile(s, this.events);
    this.unsubscribe = s.driver.subscribe((e) => this.events.onDomainEvent(e));
    // Anything that changed between the reconciliation and the subscription.
    for (const d of await s.driver.list()) this.events.onDomainEvent({ kind: 'changed', info: d });
    this.metrics.startTimer();
  }

  async close(): Promise<void> {
    const s = this.state;
    s.closed = true;
    this.metrics.stopTimer();
    this.unsubscribe?.();
    await s.drain();
    await s.driver.close();
  }
}
