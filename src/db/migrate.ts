// Schema versions: migrations/NNNN_name.sql files applied in order inside one
// transaction each; SQLite's user_version records how far a database has come.
import type Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const migrationsDir = fileURLToPath(new URL('../../../migrations/', import.meta.url));

export interface Migration { version: number; name: string; sql: string }

export function loadMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number.parseInt(f.slice(0, 4), 10), name: f, sql: readFileSync(path.join(dir, f), 'utf8') }));
}

export class SchemaTooNewError extends Error {}

/** Brings the database to the newest schema; refuses one written by a newer xapid. */
export function migrate(db: Database.Database, migrations = loadMigrations()): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (from > latest) {
    throw new SchemaTooNewError(
      `the database is at schema version ${from} but this xapid knows only up to ${latest}: ` +
      'it was written by a newer xapid; run that version or restore a backup',
    );
  }
  for (const m of migrations) {
    if (m.version <= from) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return { from, to: Math.max(from, latest) };
}
