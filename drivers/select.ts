// Which driver runs: `xl` on a Xen host (dom0 with /proc/xen and an xl binary),
// the simulator elsewhere, or whichever the configuration names.
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import type { Driver } from './driver.js';
import { SimulatorDriver } from './simulator/index.js';
import { XlDriver } from './xl/index.js';

export type DriverChoice = 'auto' | 'sim' | 'xl';

/** The first executable `name` on PATH (plus Debian's Xen tool directories). */
export function findExecutable(name: string, extraDirs: string[] = ['/usr/lib/xen-4.17/bin', '/usr/sbin', '/usr/lib/xen/bin']): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...extraDirs];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export interface DriverSetup {
  choice: DriverChoice;
  stateDir: string;
  simDelayScale: number;
  log: (msg: string, detail?: Record<string, unknown>) => void;
}

export function selectDriver(s: DriverSetup): { driver: Driver; why: string } {
  const xl = findExecutable('xl');
  const xen = existsSync('/proc/xen');
  let use: 'sim' | 'xl';
  let why: string;
  if (s.choice === 'auto') {
    use = xen && xl ? 'xl' : 'sim';
    why = use === 'xl'
      ? `Xen found (/proc/xen and ${xl}): using the xl driver`
      : `no Xen here (${xen ? '' : '/proc/xen absent'}${!xen && !xl ? ', ' : ''}${xl ? '' : 'no xl binary'}): using the simulator driver`;
  } else {
    use = s.choice;
    why = `the ${use} driver was chosen in the configuration`;
  }
  if (use === 'xl') {
    const xenstoreRead = findExecutable('xenstore-read');
    return {
      driver: new XlDriver({
        configDir: path.join(s.stateDir, 'xl'),
        xl: xl ?? 'xl',
        xenstoreBin: xenstoreRead ? path.dirname(xenstoreRead) : undefined,
        log: s.log,
      }),
      why,
    };
  }
  return {
    driver: new SimulatorDriver({ stateFile: path.join(s.stateDir, 'simulator.json'), delayScale: s.simDelayScale, onError: (m) => s.log(m) }),
    why: `${why} (delays ×${s.simDelayScale})`,
  };
}
