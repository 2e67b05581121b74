// The storage journal: before the daemon makes or removes storage that a record will
// describe, it writes down what it is about to do; once the records agree with the
// disk, the entry goes. A daemon that dies in between finds the entry at its next
// start and finishes the job the safe way: storage made for a record that was never
// written is removed, storage whose record was removed is removed too. So after a
// restart no image lies about without a record and no record names a missing image.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

export type Intent =
  /** A VDI image is being made (create, clone, snapshot, copy) for a record of this uuid. */
  | { id: string; kind: 'vdi-create'; sr: string; srUuid: string; vdiUuid: string }
  /** A VDI's record is being removed, then its image. */
  | { id: string; kind: 'vdi-delete'; sr: string; srUuid: string; vdiUuid: string; location: string }
  /** SR storage is being made for an SR record of this uuid. */
  | { id: string; kind: 'sr-create'; srUuid: string; type: string; deviceConfig: Record<string, string>; smConfig: Record<string, string> };

type NewIntent = Intent extends infer I ? (I extends Intent ? Omit<I, 'id'> : never) : never;

export class IntentJournal {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Writes the entry durably before returning. */
  add(i: NewIntent): Intent {
    const entry = { id: randomUUID(), ...i } as Intent;
    const file = path.join(this.dir, `${entry.id}.json`);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry));
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    return entry;
  }

  remove(i: Intent): void {
    rmSync(path.join(this.dir, `${i.id}.json`), { force: true });
  }

  all(): Intent[] {
    const out: Intent[] = [];
    for (const f of readdirSync(this.dir)) {
      const file = path.join(this.dir, f);
      if (f.endsWith('.tmp')) {
        rmSync(file, { force: true });
        continue;
      }
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(readFileSync(file, 'utf8')) as Intent);
      } catch {
        rmSync(file, { force: true });
      }
    }
    return out;
  }

  /** Uuids of VDIs whose images are being made or removed: a scan leaves them alone. */
  busyVdiUuids(srUuid: string): Set<string> {
    const s = new Set<string>();
    for (const i of this.all()) if (i.kind !== 'sr-create' && i.srUuid === srUuid) s.add(i.vdiUuid);
    return s;
  }
}
