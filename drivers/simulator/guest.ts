// The simulated guest, what it does by itself: its kernel answers xenstore
// control/shutdown requests (request() is the toolstack's side) and stops, printing
// what a kernel prints; once it has booted (running time only: pausing stops the clock)
// its guest agent writes the OS, PV driver and network facts into xenstore data/ and attr/.
import { DriverError, type ShutdownReason } from '../driver.js';
import type { SimConsoles } from './console.js';
import { cpuTime, type DomainNotices, type SimDomain, type SimState } from './state.js';
import { SIM_TIMINGS, type SimClock } from './timing.js';

/** The guest's IPv4 address: 10.x.y.z from the last three bytes of its MAC. */
export function simulatedIp(mac: string): string {
  const b = mac.split(':').slice(-3).map((h) => Number.parseInt(h, 16) || 0);
  return `10.${b[0]}.${b[1]}.${Math.max(1, Math.min(254, b[2] ?? 1))}`;
}

export class SimGuest {
  private readonly agentTimers = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly state: SimState,
    private readonly clock: SimClock,
    private readonly consoles: SimConsoles,
    private readonly notices: DomainNotices,
  ) {}

  /** The guest kernel's side of control/shutdown. */
  watchControl(d: SimDomain): void {
    const xs = this.state.xs;
    const key = `/local/domain/${d.domid}/control/shutdown`;
    const stop = xs.watch(key, () => {
      if (!this.state.has(d)) {
        stop();
        return;
      }
      const v = xs.read(key);
      if (!v || d.state !== 'running') return;
      if (d.hvm && (d.hints.noAgent ?? false)) return; // no PV drivers: nobody reads the key
      if (d.hints.shutdown === 'ignore') return;
      this.clock.later(SIM_TIMINGS.shutdownAck, () => {
        if (!this.state.has(d) || xs.read(key) !== v) return;
        xs.write(key, '');
        this.consoles.log(d, `Received ${v} request from the toolstack`);
        if (d.hints.shutdown === 'hang') return;
        if (v === 'suspend') return; // save() drives a suspend itself
        const reason: ShutdownReason = v === 'reboot' ? 'reboot' : 'poweroff';
        this.clock.later(SIM_TIMINGS.shutdownRun, () => this.stop(d, reason));
      });
    });
  }

  /** The toolstack's side of control/shutdown: writes the request, resolves when the guest clears it. */
  request(d: SimDomain, value: string, ackTimeoutMs: number, command: string): Promise<void> {
    const xs = this.state.xs;
    const key = `/local/domain/${d.domid}/control/shutdown`;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        stop();
        cancelDeadline();
        if (err) reject(err);
        else resolve();
      };
      const stop = xs.watch(key, () => {
        if (!this.state.has(d)) finish(new DriverError('no-such-domain', `domain ${d.domid} disappeared`, { command }));
        else if (xs.read(key) === '') finish();
      });
      const cancelDeadline = this.clock.deadline(ackTimeoutMs, () => {
        xs.write(key, '');
        finish(new DriverError('ack-timeout', `the guest did not acknowledge the ${value} request within ${ackTimeoutMs / 1000}s`, { command, timeoutSec: ackTimeoutMs / 1000 }));
      });
      xs.write(key, value);
    });
  }

  stop(d: SimDomain, reason: ShutdownReason): void {
    if (!this.state.has(d) || (d.state !== 'running' && d.state !== 'paused')) return;
    d.cpuTimeSec = cpuTime(d);
    d.runningSince = undefined;
    d.state = reason === 'crash' ? 'crashed' : 'shutdown';
    d.reason = reason;
    this.cancelAgent(d);
    this.consoles.log(d, reason === 'crash' ? 'Kernel panic - not syncing: sysrq triggered crash' : reason === 'reboot' ? 'reboot: Restarting system' : 'reboot: Power down');
    this.notices.changed(d);
  }

  run(d: SimDomain): void {
    d.state = 'running';
    d.runningSince = Date.now();
    if (!d.agentUp) this.scheduleAgent(d);
  }

  scheduleAgent(d: SimDomain): void {
    this.cancelAgent(d);
    if (d.hints.noAgent) return;
    const ms = this.clock.ms(d.bootLeftMs);
    const started = Date.now();
    const fire = () => {
      this.agentTimers.delete(d.domid);
      if (!this.state.has(d) || d.state !== 'running' || this.clock.stopped) return;
      d.bootLeftMs = 0;
      this.agentReport(d);
    };
    if (ms <= 0) {
      queueMicrotask(fire);
      return;
    }
    const t = setTimeout(() => fire(), ms);
    this.agentTimers.set(d.domid, t);
    (t as NodeJS.Timeout & { started?: number }).started = started;
  }

  /** Pausing stops the boot clock: remember how much boot time is left. */
  cancelAgent(d: SimDomain): void {
    const t = this.agentTimers.get(d.domid) as (NodeJS.Timeout & { started?: number }) | undefined;
    if (!t) return;
    clearTimeout(t);
    this.agentTimers.delete(d.domid);
    if (t.started !== undefined && this.clock.delayScale > 0) {
      d.bootLeftMs = Math.max(0, d.bootLeftMs - (Date.now() - t.started) / this.clock.delayScale);
    }
  }

  clearTimers(): void {
    for (const t of this.agentTimers.values()) clearTimeout(t);
    this.agentTimers.clear();
  }

  /** The guest agent writes what xapid reads into VM_guest_metrics. */
  private agentReport(d: SimDomain): void {
    const base = `/local/domain/${d.domid}`;
    d.agentUp = true;
    this.consoles.log(d, 'xapid-sim login:');
    const w = (k: string, v: string) => this.state.xs.write(`${base}/${k}`, v);
    if (d.hvm) {
      w('data/os_name', 'Simulated HVM guest');
      w('data/os_uname', '10.0-sim');
      w('data/os_distro', 'windows');
      w('data/os_majorver', '10');
      w('data/os_minorver', '0');
    } else {
      w('data/os_name', 'Debian GNU/Linux 12 (bookworm)');
      w('data/os_uname', '6.1.0-sim-amd64');
      w('data/os_distro', 'debian');
      w('data/os_majorver', '12');
      w('data/os_minorver', '0');
    }
    w('attr/PVAddons/MajorVersion', '7');
    w('attr/PVAddons/MinorVersion', '0');
    w('attr/PVAddons/MicroVersion', '0');
    w('attr/PVAddons/BuildVersion', '1');
    for (const nic of d.nics) w(`attr/eth${nic.devid}/ip`, simulatedIp(nic.mac));
    w('data/meminfo_total', String(Math.floor(d.memoryBytes / 1024)));
    w('data/meminfo_free', String(Math.floor((d.memoryBytes * 0.6) / 1024)));
    w('data/updated', '1');
    this.state.persist();
    this.notices.agentWrote(d);
  }
}
