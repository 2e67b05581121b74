// The file SR on real directories: bytes written into a VDI survive snapshot, clone,
// copy, resize and a daemon restart; destroying a snapshot never harms its origin;
// bases are reclaimed once unused; scan, forget and introduce keep records and files
// in line; copy reports progress and can be cancelled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { until } from '../helpers/api.js';
import { tempDir } from '../helpers/daemon.js';
import { fileSr, hasPattern, images, MiB, QEMU_MISSING, reconnect, sameContents, storageDaemon, tmp, vdiArgs, writePattern } from './helpers.js';

test('file SR: data survives snapshot, clone, copy, resize and restart', { skip: QEMU_MISSING }, async (t) => {
  const dirA = tmp('xapid-file-a-');
  const dirB = tmp('xapid-file-b-');
  const stateDir = tempDir();
  t.after(() => {
    for (const d of [dirA, dirB, stateDir]) rmSync(d, { recursive: true, force: true });
  });
  let { d, api, host } = await storageDaemon({ stateDir });
  t.after(() => d.stop());
  const at = (dir: string, vdiRec: { location: string }) => path.join(dir, vdiRec.location);

  // ---- SR and PBD --------------------------------------------------------------
  const types: string[] = await api.call('SR.get_supported_types');
  for (const ty of ['file', 'iso', 'lvm']) assert.ok(types.includes(ty), `supported types ${types}`);
  const sms = Object.values(await api.call('SM.get_all_records')) as any[];
  const fileSm = sms.find((s) => s.type === 'file');
  assert.ok(fileSm.capabilities.includes('VDI_SNAPSHOT') && fileSm.configuration.location, JSON.stringify(fileSm));

  const srA = await fileSr(api, host, dirA, 'A');
  const srB = await fileSr(api, host, dirB, 'B');
  let sr = await api.call('SR.get_record', srA);
  assert.equal(sr.type, 'file');
  assert.equal(sr.PBDs.length, 1);
  const pbd = await api.call('PBD.get_record', sr.PBDs[0]);
  assert.equal(pbd.currently_attached, true);
  assert.deepEqual(pbd.device_config, { location: dirA });
  const fs = statfsSync(dirA);
  assert.equal(sr.physical_size, fs.blocks * fs.bsize);
  assert.ok(sr.physical_utilisation > 0 && sr.physical_utilisation <= sr.physical_size);
  assert.ok(existsSync(path.join(dirA, '.xapid-sr.json')));
  assert.match(await api.call('SR.probe', host, { location: dirA }, 'file', {}), new RegExp(`<UUID>\\s*${sr.uuid}\\s*</UUID>`));

  // ---- create, write, snapshot, clone -------------------------------------------
  const origin = await api.call('VDI.create', vdiArgs(srA, 64 * MiB, 'origin'));
  let o = await api.call('VDI.get_record', origin);
  assert.equal(o.virtual_size, 64 * MiB);
  assert.ok(existsSync(at(dirA, o)));
  assert.equal((await api.call('SR.get_record', srA)).virtual_allocation, 64 * MiB);
  writePattern(at(dirA, o), 0x11, 0, 8 * MiB);

  const snap = await api.call('VDI.snapshot', origin, {});
  const s = await api.call('VDI.get_record', snap);
  assert.equal(s.SR, srA);
  assert.equal(s.virtual_size, 64 * MiB);
  assert.equal(s.name_label, 'origin');
  // After the snapshot the origin changes; the snapshot keeps what was there.
  writePattern(at(dirA, o), 0x22, 0, 1 * MiB);
  assert.ok(hasPattern(at(dirA, s), 0x11, 0, 8 * MiB), 'snapshot keeps the data of its time');
  assert.ok(hasPattern(at(dirA, o), 0x22, 0, 1 * MiB) && hasPattern(at(dirA, o), 0x11, 1 * MiB, 7 * MiB));

  const clone = await api.call('VDI.clone', origin, {});
  const c = await api.call('VDI.get_record', clone);
  assert.equal(c.read_only, false);
  assert.ok(hasPattern(at(dirA, c), 0x22, 0, 1 * MiB) && hasPattern(at(dirA, c), 0x11, 1 * MiB, 7 * MiB));
  writePattern(at(dirA, c), 0x33, 0, 1 * MiB);
  assert.ok(hasPattern(at(dirA, o), 0x22, 0, 1 * MiB), 'writing into the clone leaves the origin alone');

  // ---- copy to another SR, with a task ------------------------------------------
  const task = await api.call('Async.VDI.copy', origin, srB);
  const done = await until(async () => {
    const r = await api.call('task.get_record', task);
    return r.status === 'pending' ? undefined : r;
  }, 'the copy task', 2000);
  assert.equal(done.status, 'success', JSON.stringify(done.error_info));
  assert.equal(done.progress, 1);
  const copy = /OpaqueRef:[^<]+/.exec(done.result)![0];
  const cp = await api.call('VDI.get_record', copy);
  assert.equal(cp.SR, srB);
  assert.equal(cp.virtual_size, 64 * MiB);
  assert.ok(sameContents(at(dirA, o), at(dirB, cp)), 'the copy has the same bytes');
  assert.equal(readdirSync(dirB).filter((f) => f.startsWith('.base-')).length, 0, 'a copy has no backing chain');

  // Copy into an existing, bigger VDI.
  const into = await api.call('VDI.create', vdiArgs(srB, 80 * MiB, 'into'));
  assert.equal(await api.call('VDI.copy', clone, 'OpaqueRef:NULL', 'OpaqueRef:NULL', into), into);
  const intoRec = await api.call('VDI.get_record', into);
  assert.ok(hasPattern(at(dirB, intoRec), 0x33, 0, 1 * MiB) && hasPattern(at(dirB, intoRec), 0x11, 1 * MiB, 7 * MiB));

  // ---- destroying the snapshot and the origin never harms the others --------------
  await api.call('VDI.destroy', snap);
  assert.ok(!existsSync(at(dirA, s)));
  assert.ok(hasPattern(at(dirA, o), 0x22, 0, 1 * MiB) && hasPattern(at(dirA, o), 0x11, 1 * MiB, 7 * MiB), 'origin intact');
  await api.call('VDI.destroy', origin);
  assert.ok(hasPattern(at(dirA, c), 0x33, 0, 1 * MiB) && hasPattern(at(dirA, c), 0x11, 1 * MiB, 7 * MiB), 'clone intact');
  // Every base left is still in someone's backing chain.
  const chain = execFileSync('qemu-img', ['info', '--backing-chain', at(dirA, c)], { encoding: 'utf8' });
  for (const b of readdirSync(dirA).filter((f) => f.startsWith('.base-'))) assert.ok(chain.includes(b), `unused base ${b} kept`);
  await api.call('VDI.destroy', clone);
  assert.deepEqual(readdirSync(dirA).sort(), ['.xapid-sr.json'], 'all images and bases reclaimed');
  assert.deepEqual((await api.call('SR.get_record', srA)).VDIs, []);
  assert.equal((await api.call('SR.get_record', srA)).virtual_allocation, 0);

  // ---- resize ---------------------------------------------------------------------
  const r = await api.call('VDI.create', vdiArgs(srA, 32 * MiB, 'grow'));
  const rRec = await api.call('VDI.get_record', r);
  writePattern(at(dirA, rRec), 0x44, 31 * MiB, 1 * MiB);
  await api.call('VDI.resize', r, 48 * MiB);
  assert.equal((await api.call('VDI.get_record', r)).virtual_size, 48 * MiB);
  assert.match(execFileSync('qemu-img', ['info', at(dirA, rRec)], { encoding: 'utf8' }), /virtual size: 48 MiB/);
  assert.ok(hasPattern(at(dirA, rRec), 0x44, 31 * MiB, 1 * MiB) && hasPattern(at(dirA, rRec), 0, 32 * MiB, 16 * MiB));
  const shrink = await api.failure('VDI.resize', r, 16 * MiB);
  assert.equal(shrink[0], 'SR_BACKEND_FAILURE_1001');
  assert.equal((await api.call('VDI.get_record', r)).virtual_size, 48 * MiB);
  assert.deepEqual(await api.failure('VDI.resize', r, 0), ['INVALID_VALUE', 'size', '0']);

  // ---- forget, scan, introduce --------------------------------------------------------
  await api.call('VDI.forget', r);
  assert.ok(existsSync(at(dirA, rRec)), 'forget keeps the image');
  assert.deepEqual((await api.call('SR.get_record', srA)).VDIs, []);
  await api.call('SR.scan', srA);
  const back = await api.call('VDI.get_by_uuid', rRec.uuid);
  assert.equal((await api.call('VDI.get_record', back)).location, rRec.location);
  await api.call('VDI.forget', back);
  const intro = await api.call('VDI.introduce', rRec.uuid, 'introduced', '', srA, 'user', false, false, {}, rRec.location, {}, {});
  const iRec = await api.call('VDI.get_record', intro);
  assert.equal(iRec.virtual_size, 48 * MiB);
  assert.equal(iRec.name_label, 'introduced');
  assert.deepEqual(await api.failure('VDI.introduce', randomUUID(), 'again', '', srA, 'user', false, false, {}, rRec.location, {}, {}), ['LOCATION_NOT_UNIQUE', srA, rRec.location]);
  // An image made behind the daemon's back appears at the next scan; one removed disappears.
  const stray = randomUUID();
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dirA, `${stray}.qcow2`), String(4 * MiB)]);
  await api.call('SR.scan', srA);
  const strayRef = await api.call('VDI.get_by_uuid', stray);
  assert.equal((await api.call('VDI.get_record', strayRef)).virtual_size, 4 * MiB);
  rmSync(path.join(dirA, `${stray}.qcow2`));
  await api.call('SR.scan', srA);
  assert.equal((await api.failure('VDI.get_by_uuid', stray))[0], 'UUID_INVALID');

  // ---- a restart keeps everything --------------------------------------------------
  sr = await api.call('SR.get_record', srA);
  await d.stop();
  d = await startAgain(stateDir);
  ({ api, host } = await reconnect(d));
  const pbdAfter = await api.call('PBD.get_record', sr.PBDs[0]);
  assert.equal(pbdAfter.currently_attached, true, 'the PBD is plugged again after a restart');
  assert.ok(hasPattern(at(dirA, iRec), 0x44, 31 * MiB, 1 * MiB), 'bytes survive the restart');
  assert.equal((await api.call('VDI.get_record', intro)).virtual_size, 48 * MiB);
  assert.ok(sameContents(at(dirB, cp), at(dirB, cp)));
  assert.deepEqual(images(dirB).sort(), [cp.location, intoRec.location].sort());
});

async function startAgain(stateDir: string) {
  const { d } = await storageDaemon({ stateDir });
  return d;
}

test('file SR: VDI.copy reports progress and can be cancelled, leaving nothing behind', { skip: QEMU_MISSING }, async (t) => {
  const dirA = tmp('xapid-copy-a-');
  const dirB = tmp('xapid-copy-b-');
  t.after(() => {
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  });
  // A slow copy (2 MiB/s) so that the cancel surely lands in the middle.
  const { d, api, host } = await storageDaemon({ env: { XAPID_COPY_RATE_LIMIT: '2M' } });
  t.after(() => d.cleanup());
  const srA = await fileSr(api, host, dirA, 'A');
  const srB = await fileSr(api, host, dirB, 'B');
  const v = await api.call('VDI.create', vdiArgs(srA, 64 * MiB, 'big'));
  const rec = await api.call('VDI.get_record', v);
  writePattern(path.join(dirA, rec.location), 0x5a, 0, 64 * MiB);

  const task = await api.call('Async.VDI.copy', v, srB);
  await until(async () => ((await api.call('task.get_progress', task)) > 0 ? true : undefined), 'copy progress', 4000);
  assert.equal(images(dirB).length, 1, 'the destination image exists during the copy');
  assert.deepEqual((await api.call('VDI.get_record', v)).current_operations, { [task]: 'copy' });
  await api.call('task.cancel', task);
  const done = await until(async () => {
    const r = await api.call('task.get_record', task);
    return r.status === 'pending' || r.status === 'cancelling' ? undefined : r;
  }, 'the cancelled task', 4000);
  assert.equal(done.status, 'cancelled');
  assert.equal(done.error_info[0], 'TASK_CANCELLED');
  assert.deepEqual(images(dirB), [], 'the half-made copy is removed');
  assert.deepEqual((await api.call('SR.get_record', srB)).VDIs, []);
  assert.deepEqual((await api.call('VDI.get_record', v)).current_operations, {});
  assert.ok(hasPattern(path.join(dirA, rec.location), 0x5a, 0, 64 * MiB), 'the source is untouched');
});
