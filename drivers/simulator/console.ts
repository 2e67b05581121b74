// The simulated guests' text consoles: each domain keeps its last lines (they go into
// the state file and suspend images too), and every open console hears new ones.
import type { ConsoleStream } from '../driver.js';
import type { SimDomain, SimState } from './state.js';

export class SimConsoles {
  private readonly listeners = new Map<number, Set<(text: string) => void>>();

  constructor(private readonly state: SimState) {}

  /** A line the guest prints. */
  log(d: SimDomain, line: string): void {
    d.console.push(line);
    if (d.console.length > 200) d.console.splice(0, d.console.length - 200);
    for (const l of this.listeners.get(d.domid) ?? []) l(`${line}\r\n`);
  }

  open(d: SimDomain): ConsoleStream {
    const domid = d.domid;
    const mine = new Set<(text: string) => void>();
    let set = this.listeners.get(domid);
    if (!set) {
      set = new Set();
      this.listeners.set(domid, set);
    }
    const all = set;
    const relay = (text: string) => {
      for (const l of mine) l(text);
    };
    all.add(relay);
    return {
      onData: (l) => {
        mine.add(l);
        if (d.console.length) l(`${d.console.join('\r\n')}\r\n`);
      },
      write: (text) => {
        // The simulated guest's terminal echoes what it is sent.
        if (this.state.has(d) && d.state === 'running') relay(text);
      },
      close: () => {
        all.delete(relay);
        mine.clear();
      },
    };
  }

  /** The domain is gone: its consoles hear nothing more. */
  forget(domid: number): void {
    this.listeners.delete(domid);
  }
}
