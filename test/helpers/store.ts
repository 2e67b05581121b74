// An ObjectStore on a fresh SQLite file, closed and removed when the test ends.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ObjectStore } from '../../src/db/store.js';
import { tempDir } from './daemon.js';

export function openTestStore(t: { after(fn: () => void): void }, prefix = 'xapid-store-'): { store: ObjectStore; file: string } {
  const dir = tempDir(prefix);
  const file = path.join(dir, 'xapid.db');
  const store = new ObjectStore(file);
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, file };
}
