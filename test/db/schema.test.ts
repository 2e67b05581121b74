// The schema: the migrations build exactly what the datamodel implies; an older
// database is brought forward; a database from a newer xapid is refused, by the
// library and by a real daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { classes } from '../../src/datamodel/model.js';
import { loadMigrations, migrate, migrationsDir, SchemaTooNewError } from '../../src/db/migrate.js';
import { fullSchemaSql, sqlLiteral, sqlType } from '../../src/db/schema.js';
import { ObjectStore } from '../../src/db/store.js';
import { MAIN, ROOT_PASSWORD, tempDir } from '../helpers/daemon.js';

interface Column { cid: number; name: string; type: string; notnull: number; dflt_value: string | null; pk: number }
interface IndexInfo { name: string; unique: number; columns: string[] }

/** Tables, their columns and indexes, as SQLite reports them. */
function describe(db: Database.Database) {
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).pluck().all() as string[]);
  const out = new Map<string, { columns: Column[]; indexes: IndexInfo[] }>();
  for (const t of tables) {
    const columns = db.prepare(`PRAGMA table_info("${t}")`).all() as Column[];
    const indexes = (db.prepare(`PRAGMA index_list("${t}")`).all() as Array<{ name: string; unique: number; origin: string }>)
      .filter((i) => i.origin === 'c')
      .map((i) => ({ name: i.name, unique: i.unique, columns: (db.prepare(`PRAGMA index_info("${i.name}")`).all() as Array<{ name: string }>).map((x) => x.name) }))
      .sort((a, b) => a.name.localeCompare(b.name));
    out.set(t, { columns, indexes });
  }
  return out;
}

const INTERNAL = ['_changes', '_passwords', '_session_auth'];

test('the migrations build the schema that fullSchemaSql() describes', () => {
  const migrated = new Database(':memory:');
  const direct = new Database(':memory:');
  try {
    const r = migrate(migrated);
    const latest = loadMigrations().at(-1)!.version;
    assert.deepEqual(r, { from: 0, to: latest });
    assert.equal(migrated.pragma('user_version', { simple: true }), latest);
    direct.exec(fullSchemaSql());
    assert.deepEqual(describe(migrated), describe(direct));
  } finally {
    migrated.close();
    direct.close();
  }
});

test('every stored class has a table whose columns are exactly its stored fields', () => {
  const db = new Database(':memory:');
  try {
    migrate(db);
    const schema = describe(db);
    const stored = [...classes.values()].filter((c) => c.stored);
    assert.deepEqual([...schema.keys()].sort(), [...stored.map((c) => c.name), ...INTERNAL].sort(), 'one table per stored class, plus the internal ones');
    assert.ok(!schema.has('event'), 'event is not stored');
    for (const c of stored) {
      const { columns, indexes } = schema.get(c.name)!;
      assert.deepEqual(columns.map((x) => x.name), ['ref', ...c.storedFields.map((f) => f.name)], `${c.name} columns`);
      assert.deepEqual(columns[0], { cid: 0, name: 'ref', type: 'TEXT', notnull: 0, dflt_value: null, pk: 1 });
      for (const f of c.storedFields) {
        const col = columns.find((x) => x.name === f.name)!;
        const where = `${c.name}.${f.name}`;
        assert.equal(col.type, sqlType(f.type), `${where} type`);
        assert.equal(col.notnull, 1, `${where} NOT NULL`);
        assert.equal(col.dflt_value, sqlLiteral(f.type, f.initial), `${where} default`);
        assert.equal(col.pk, 0);
        // Nothing computed, removed or out of scope is stored.
        assert.ok(!f.computedFrom && !f.removed, where);
      }
      for (const f of c.recordFields.filter((x) => x.computedFrom)) {
        assert.ok(!columns.some((x) => x.name === f.name), `${c.name}.${f.name} is computed, so it has no column`);
      }
      for (const f of [...c.fields.values()].filter((x) => x.removed)) {
        assert.ok(!columns.some((x) => x.name === f.name), `${c.name}.${f.name} was removed, so it has no column`);
      }
      const uuidIndex = indexes.find((i) => i.columns.length === 1 && i.columns[0] === 'uuid');
      assert.ok(uuidIndex && uuidIndex.unique === 1, `${c.name}.uuid is unique`);
      for (const f of c.storedFields.filter((x) => x.bound)) {
        assert.ok(indexes.some((i) => i.columns[0] === f.name), `${c.name}.${f.name} (a bound field) is indexed`);
      }
    }
  } finally {
    db.close();
  }
});

test('the migration files are consecutive and numbered from 1', () => {
  const ms = loadMigrations();
  assert.ok(ms.length >= 1);
  ms.forEach((m, i) => assert.equal(m.version, i + 1, m.name));
});

test('a database at user_version 0 is migrated by ObjectStore and keeps working', (t) => {
  const dir = tempDir('xapid-schema-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'xapid.db');
  const raw = new Database(file);
  assert.equal(raw.pragma('user_version', { simple: true }), 0);
  raw.close();
  const store = new ObjectStore(file);
  try {
    assert.equal(store.db.pragma('user_version', { simple: true }), loadMigrations().at(-1)!.version);
    const vm = store.create('VM', { name_label: 'after migration' });
    assert.equal(store.get('VM', vm)!.name_label, 'after migration');
  } finally {
    store.close();
  }
  // A second open finds nothing to do and keeps the data.
  const again = new ObjectStore(file);
  try {
    assert.equal(again.refsByNameLabel('VM', 'after migration').length, 1);
  } finally {
    again.close();
  }
});

test('an old schema is brought forward by a newer migration, keeping its data', (t) => {
  const dir = tempDir('xapid-schema-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const v1 = path.join(dir, 'v1');
  const v2 = path.join(dir, 'v2');
  mkdirSync(v1);
  mkdirSync(v2);
  for (const d of [v1, v2]) copyFileSync(path.join(migrationsDir, '0001_initial.sql'), path.join(d, '0001_initial.sql'));
  writeFileSync(path.join(v2, '0002_add_notes.sql'), `ALTER TABLE "VM" ADD COLUMN "notes" TEXT NOT NULL DEFAULT 'none';\nCREATE TABLE "_notes" ("k" TEXT PRIMARY KEY);\n`);
  writeFileSync(path.join(v2, 'README.txt'), 'not a migration');

  const db = new Database(path.join(dir, 'old.db'));
  try {
    assert.deepEqual(migrate(db, loadMigrations(v1)), { from: 0, to: 1 });
    db.prepare(`INSERT INTO "VM" ("ref", "uuid", "name_label") VALUES ('OpaqueRef:old', 'u-old', 'kept')`).run();
    assert.deepEqual(loadMigrations(v2).map((m) => m.name), ['0001_initial.sql', '0002_add_notes.sql']);
    assert.deepEqual(migrate(db, loadMigrations(v2)), { from: 1, to: 2 });
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    assert.deepEqual(db.prepare(`SELECT "name_label", "notes" FROM "VM" WHERE "ref" = 'OpaqueRef:old'`).get(), { name_label: 'kept', notes: 'none' });
    assert.ok(db.prepare(`SELECT 1 FROM sqlite_master WHERE name = '_notes'`).get());
    // Running again applies nothing.
    assert.deepEqual(migrate(db, loadMigrations(v2)), { from: 2, to: 2 });
  } finally {
    db.close();
  }
});

test('a failing migration leaves the database at its previous version, unchanged', (t) => {
  const dir = tempDir('xapid-schema-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(path.join(migrationsDir, '0001_initial.sql'), path.join(dir, '0001_initial.sql'));
  const db = new Database(path.join(dir, 'x.db'));
  try {
    migrate(db, loadMigrations(dir));
    writeFileSync(path.join(dir, '0002_broken.sql'), `CREATE TABLE "_half" ("x" TEXT);\nINSERT INTO "no_such_table" VALUES (1);\n`);
    assert.throws(() => migrate(db, loadMigrations(dir)), /no such table/);
    assert.equal(db.pragma('user_version', { simple: true }), 1);
    assert.equal(db.prepare(`SELECT 1 FROM sqlite_master WHERE name = '_half'`).get(), undefined, 'the half-applied migration was rolled back');
  } finally {
    db.close();
  }
});

/** A database file that claims a schema newer than any migration. */
function tooNewDatabase(file: string): number {
  const version = loadMigrations().at(-1)!.version + 7;
  const db = new Database(file);
  db.exec('CREATE TABLE "future" ("x" TEXT)');
  db.pragma(`user_version = ${version}`);
  db.close();
  return version;
}

test('a database from a newer xapid is refused with SchemaTooNewError and left alone', (t) => {
  const dir = tempDir('xapid-schema-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'xapid.db');
  const version = tooNewDatabase(file);

  const db = new Database(file);
  try {
    assert.throws(() => migrate(db), (e: unknown) => e instanceof SchemaTooNewError && e.message.includes(String(version)));
  } finally {
    db.close();
  }
  assert.throws(() => new ObjectStore(file), SchemaTooNewError);

  const check = new Database(file, { readonly: true });
  try {
    assert.equal(check.pragma('user_version', { simple: true }), version);
    assert.deepEqual(check.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all(), ['future'], 'no table was created');
    assert.equal(check.pragma('journal_mode', { simple: true }), 'delete', 'not even switched to WAL');
  } finally {
    check.close();
  }
});

test('a daemon started on a state directory from a newer xapid exits non-zero and says why', async (t) => {
  const dir = tempDir('xapid-schema-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const version = tooNewDatabase(path.join(dir, 'xapid.db'));
  const proc = spawn(process.execPath, [MAIN, '--state-dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'info'], {
    env: { ...process.env, XAPID_ROOT_PASSWORD: ROOT_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.once('exit', (c, s) => resolve([c, s])));
  assert.notEqual(code, 0, out);
  assert.notEqual(code, null, out);
  const fatal = out.split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as { level: number; msg: string };
    } catch {
      return undefined;
    }
  }).find((l) => l && l.level >= 60);
  assert.ok(fatal, `a fatal log line:\n${out}`);
  assert.match(fatal.msg, new RegExp(`schema version ${version}`));
  assert.match(fatal.msg, /newer xapid/);
  assert.doesNotMatch(out, /xapid ready|"listening"/);
  // The refused database is untouched.
  const check = new Database(path.join(dir, 'xapid.db'), { readonly: true });
  try {
    assert.equal(check.pragma('user_version', { simple: true }), version);
  } finally {
    check.close();
  }
  assert.ok(!existsSync(path.join(dir, 'initial-root-password')));
});
