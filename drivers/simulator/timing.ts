// Simulated time: every delay the simulator takes is a realistic duration multiplied by
// the delay scale (0 removes them all), on timers that all go when the simulator closes.

/** Realistic durations in milliseconds (before scaling). */
export const SIM_TIMINGS = {
  build: 300,
  bootloader: 250,
  /** From unpause to the guest agent's first report. */
  boot: 2000,
  destroy: 80,
  pause: 10,
  shutdownAck: 50,
  shutdownRun: 700,
  savePer64MiB: 20,
  save: 400,
  restore: 400,
  hotplug: 60,
  control: 10,
  dumpCore: 200,
};

export class SimClock {
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Set when the simulator closes: work scheduled with later() is dropped from then on. */
  stopped = false;

  constructor(readonly delayScale: number) {}

  ms(base: number): number {
    return Math.max(0, base * this.delayScale);
  }

  /** Waits a scaled delay; with no delay it only yields to other work. */
  wait(base: number): Promise<void> {
    return this.waitExactly(this.ms(base));
  }

  waitExactly(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  later(base: number, fn: () => void): void {
    const ms = this.ms(base);
    if (ms <= 0) {
      queueMicrotask(() => !this.stopped && fn());
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  /** Runs fn after `ms` unscaled milliseconds unless cancelled first (a deadline, not a simulated delay). */
  deadline(ms: number, fn: () => void): () => void {
    const t = setTimeout(fn, ms);
    this.timers.add(t);
    return () => {
      clearTimeout(t);
      this.timers.delete(t);
    };
  }

  clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
