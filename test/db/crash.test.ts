// Durability: a daemon killed with SIGKILL in the middle of a stream of writes restarts
// into an intact database that holds every write it acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { classes, NULL_REF } from '../../src/datamodel/model.js';
import { jsonCall, login, sampleValue, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';

/** A VM.create record with every required field. */
function vmArgs(name: string): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const f of classes.get('VM')!.storedFields) if (f.required) args[f.name] = sampleValue(f.type, 0, () => NULL_REF);
  return { ...args, name_label: name, memory_static_max: 2 ** 28, memory_dynamic_max: 2 ** 28, memory_dynamic_min: 2 ** 24, memory_static_min: 2 ** 24, VCPUs_max: 1, VCPUs_at_startup: 1 };
}

/** One worker's history: the VMs it made and, per VM, the name last acknowledged and
 * the one (if any) whose call was still unanswered when the daemon died. */
interface Chain { vms: Map<string, { acked: string; pending?: string }>; pendingCreate?: string }

const WORKERS = 8;
const KILL_AFTER = 150;
const RENAMES_PER_VM = 4;

test('every acknowledged write survives SIGKILL; the database is intact and the daemon serves again', async (t) => {
  const stateDir = tempDir('xapid-crash-');
  const daemons: TestDaemon[] = [];
  t.after(async () => {
    for (const d of daemons) await d.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const first = await startDaemon({ stateDir });
  daemons.push(first);
  const s = await login(first.url);
  let inFlight = 0;
  const call = async (method: string, ...params: unknown[]) => {
    inFlight++;
    try {
      const r = await jsonCall(first.url, method, [s, ...params]);
      if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
      return r.result;
    } finally {
      inFlight--;
    }
  };

  // A stream of writes from several clients at once; the daemon is killed the moment the
  // KILL_AFTER-th acknowledgement arrives, with the other clients' calls still in flight.
  let acks = 0;
  let inFlightAtKill = -1;
  let exited: Promise<number | null> | undefined;
  const chains: Chain[] = Array.from({ length: WORKERS }, () => ({ vms: new Map() }));
  const ack = () => {
    acks++;
    if (acks !== KILL_AFTER) return;
    inFlightAtKill = inFlight;
    exited = first.stop('SIGKILL');
  };
  const worker = async (w: number) => {
    const chain = chains[w]!;
    try {
      for (let k = 0; !exited; k++) {
        const name0 = `w${w}-vm${k}-n0`;
        chain.pendingCreate = name0;
        const vm = await call('VM.create', vmArgs(name0)) as string;
        chain.pendingCreate = undefined;
        const entry: { acked: string; pending?: string } = { acked: name0 };
        chain.vms.set(vm, entry);
        ack();
        for (let j = 1; j <= RENAMES_PER_VM && !exited; j++) {
          entry.pending = `w${w}-vm${k}-n${j}`;
          await call('VM.set_name_label', vm, entry.pending);
          entry.acked = entry.pending;
          entry.pending = undefined;
          ack();
        }
      }
    } catch {
      // The daemon died under this call: what it was doing is recorded as pending.
      assert.ok(exited, 'calls fail only after the kill');
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  assert.ok(exited, 'the daemon was killed');
  await exited;
  assert.equal(first.proc.signalCode, 'SIGKILL');
  assert.ok(acks >= KILL_AFTER);
  // Every other client was waiting for an answer when the daemon died.
  assert.equal(inFlightAtKill, WORKERS - 1);
  const acknowledged = chains.flatMap((c) => [...c.vms.entries()]);
  assert.ok(acknowledged.length >= KILL_AFTER / (RENAMES_PER_VM + 1));

  // Straight into the file: intact, and holding every acknowledged write.
  const db = new Database(path.join(stateDir, 'xapid.db'));
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.deepEqual(db.pragma('foreign_key_check'), []);
    const row = db.prepare('SELECT "name_label", "metrics" FROM "VM" WHERE "ref" = ?');
    const metricsExists = db.prepare('SELECT 1 FROM "VM_metrics" WHERE "ref" = ?').pluck();
    const added = db.prepare(`SELECT COUNT(*) FROM "_changes" WHERE "cls" = 'VM' AND "op" = 'add' AND "ref" = ?`).pluck();
    for (const [vm, { acked, pending }] of acknowledged) {
      const r = row.get(vm) as { name_label: string; metrics: string } | undefined;
      assert.ok(r, `acknowledged VM ${acked} is in the database`);
      assert.ok(r.name_label === acked || r.name_label === pending, `${vm}: name ${r.name_label}, acknowledged ${acked}`);
      assert.equal(metricsExists.get(r.metrics), 1, `${vm}: its metrics object was committed with it`);
      assert.equal(added.get(vm), 1, `${vm}: its creation is in the change log`);
    }
    // Any other VM of ours was a create in flight at the kill, and was committed whole.
    const known = new Set(acknowledged.map(([vm]) => vm));
    const pendingCreates = new Set(chains.map((c) => c.pendingCreate).filter(Boolean));
    const ours = db.prepare(`SELECT "ref", "name_label", "metrics" FROM "VM" WHERE "name_label" LIKE 'w%-vm%'`).all() as Array<{ ref: string; name_label: string; metrics: string }>;
    for (const r of ours.filter((x) => !known.has(x.ref))) {
      assert.ok(pendingCreates.has(r.name_label), `unexpected VM ${r.name_label}`);
      assert.equal(metricsExists.get(r.metrics), 1);
    }
  } finally {
    db.close();
  }

  // The same state directory serves again, with everything acknowledged.
  const second = await startDaemon({ stateDir });
  daemons.push(second);
  const s2 = await login(second.url);
  const call2 = async (method: string, ...params: unknown[]) => {
    const r = await jsonCall(second.url, method, [s2, ...params]);
    if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.result;
  };
  const records = await call2('VM.get_all_records') as Record<string, { name_label: string }>;
  for (const [vm, { acked, pending }] of acknowledged) {
    assert.ok(records[vm], `${acked} is served after the restart`);
    assert.ok([acked, pending].includes(records[vm].name_label));
  }
  const vm = await call2('VM.create', vmArgs('after the crash'));
  await call2('VM.set_name_label', vm, 'renamed after the crash');
  assert.equal(await call2('VM.get_name_label', vm), 'renamed after the crash');
  const [victim] = acknowledged[0]!;
  await call2('VM.destroy', victim);
  assert.ok(!(victim in (await call2('VM.get_all_records'))));
  await second.stop();
  assert.equal(second.proc.exitCode, 0);

  const after = new Database(path.join(stateDir, 'xapid.db'), { readonly: true });
  try {
    assert.equal(after.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    after.close();
  }
});
