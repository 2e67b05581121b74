// CPU time a server process has used, all its threads together: unlike calls/s and wall
// time it hardly depends on what else the machine is running. Read from each thread's
// /proc schedstat, which counts nanoseconds; /proc/PID/stat counts 10 ms ticks, too coarse
// for the few milliseconds a short measurement takes (and charged to whichever thread
// runs when a tick comes).
import { readdirSync, readFileSync } from 'node:fs';

export function cpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch { /* the thread has just ended */ }
    }
    return ns / 1e6;
  } catch {
    return NaN;
  }
}
