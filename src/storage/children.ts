// Processes the storage layer starts (plugins, qemu-img) run in their own process
// group and are listed in the state directory while they run. A daemon killed with
// them still running finds them at its next start and ends them (by PID, after
// checking that the PID still names the same process), so no old operation can
// still be writing while the new daemon cleans up after it.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export class ChildRegistry {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Spawns a command as the leader of a new process group and records it until it exits. */
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
    const child = spawn(cmd, args, { ...opts, detached: true });
    const pid = child.pid;
    if (pid !== undefined) {
      const file = path.join(this.dir, String(pid));
      writeFileSync(file, startTime(pid) ?? '');
      child.once('exit', () => rmSync(file, { force: true }));
    }
    return child;
  }

  /** Kills a child's whole process group (plugins may run tools of their own). */
  static killGroup(child: ChildProcess): void {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }

  /** Ends every process group a previous daemon left running; returns the command lines ended. */
  async reapStale(): Promise<string[]> {
    const ended: string[] = [];
    for (const name of readdirSync(this.dir)) {
      const pid = Number(name);
      const file = path.join(this.dir, name);
      if (!Number.isInteger(pid) || pid <= 1) {
        rmSync(file, { force: true });
        continue;
      }
      const recorded = readFileSync(file, 'utf8').trim();
      const now = startTime(pid);
      // The PID names another process now: ours has gone, and so has its group (a PID
      // is not handed out again while a group of that number lives).
      const reused = now !== undefined && recorded !== '' && now !== recorded;
      if (!reused) {
        let cmd = '';
        try {
          cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
        } catch {
          /* the leader is gone; its group may not be */
        }
        try {
          process.kill(-pid, 'SIGKILL');
          ended.push(cmd || `process group ${pid}`);
        } catch {
          /* no such group */
        }
        for (let i = 0; i < 100 && existsSync(`/proc/${pid}`) && startTime(pid) === now; i++) await sleep(20);
      }
      rmSync(file, { force: true });
    }
    return ended;
  }
}
