// SR and PBD lifecycle on a file SR, and bad input: each refusal is a precise XenAPI
// error and leaves the disk (and the records) exactly as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Api } from '../helpers/api.js';
import { fileSr, hasPattern, images, listing, MiB, QEMU_MISSING, storageDaemon, tmp, vdiArgs, writePattern } from './helpers.js';

test('bad input changes nothing and says precisely what is wrong', { skip: QEMU_MISSING }, async (t) => {
  const dirA = tmp('xapid-bad-a-');
  const dirB = tmp('xapid-bad-b-');
  const other = tmp('xapid-bad-other-');
  t.after(() => {
    for (const x of [dirA, dirB, other]) rmSync(x, { recursive: true, force: true });
  });
  const { d, api, host } = await storageDaemon();
  t.after(() => d.cleanup());
  const srA = await fileSr(api, host, dirA, 'A');
  const srB = await fileSr(api, host, dirB, 'B');
  const v = await api.call('VDI.create', vdiArgs(srA, 16 * MiB, 'v'));
  const vRec = await api.call('VDI.get_record', v);
  writePattern(path.join(dirA, vRec.location), 0x7e, 0, 1 * MiB);
  const small = await api.call('VDI.create', vdiArgs(srB, 8 * MiB, 'small'));
  const smallRec = await api.call('VDI.get_record', small);
  const fileAsLocation = path.join(other, 'plain-file');
  writeFileSync(fileAsLocation, 'not a directory');

  const state = async (a: Api) => ({
    a: listing(dirA), b: listing(dirB), other: listing(other),
    srs: (await a.call('SR.get_all')).length, vdis: (await a.call('VDI.get_all')).length, pbds: (await a.call('PBD.get_all')).length,
  });
  const refused = async (expect: (e: string[]) => void, method: string, ...args: unknown[]) => {
    const before = await state(api);
    const e = await api.failure(method, ...args);
    expect(e);
    assert.deepEqual(await state(api), before, `${method} changed something while failing with ${e.join(' ')}`);
  };
  const SR = (dc: Record<string, string>, type = 'file') => [host, dc, 0, 'bad', '', type, '', false, {}];

  await t.test('SR.create with an unknown type', () =>
    refused((e) => assert.deepEqual(e, ['SR_UNKNOWN_DRIVER', 'no-such-type']), 'SR.create', ...SR({ location: other }, 'no-such-type')));
  await t.test('SR.create without the location key', () =>
    refused((e) => assert.deepEqual(e.slice(0, 3), ['SR_BACKEND_FAILURE_94', '', 'The request is missing the location parameter']), 'SR.create', ...SR({ path: other })));
  await t.test('SR.create on a path that does not exist', () =>
    refused((e) => { assert.equal(e[0], 'SR_BACKEND_FAILURE_47'); assert.match(e[2]!, /does not exist/); }, 'SR.create', ...SR({ location: path.join(other, 'nope') })));
  await t.test('SR.create on a file', () =>
    refused((e) => { assert.equal(e[0], 'SR_BACKEND_FAILURE_1003'); assert.match(e[2]!, /not a directory/); }, 'SR.create', ...SR({ location: fileAsLocation })));
  await t.test('SR.create where another SR lives', () =>
    refused((e) => assert.equal(e[0], 'SR_BACKEND_FAILURE_42'), 'SR.create', ...SR({ location: dirA })));
  await t.test('SR.create for an lvm SR without device', () =>
    refused((e) => assert.deepEqual(e.slice(0, 3), ['SR_BACKEND_FAILURE_90', '', 'The request is missing the device parameter']), 'SR.create', ...SR({ location: other }, 'lvm')));
  await t.test('SR.create for an lvm SR on something that is not a block device', () =>
    refused((e) => assert.equal(e[0], 'SR_BACKEND_FAILURE_1003'), 'SR.create', ...SR({ device: fileAsLocation }, 'lvm')));
  await t.test('SR.probe of an unknown type, and of a type that cannot probe', async () => {
    await refused((e) => assert.deepEqual(e, ['SR_UNKNOWN_DRIVER', 'nope']), 'SR.probe', host, {}, 'nope', {});
    await refused((e) => assert.deepEqual(e, ['SR_BACKEND_FAILURE', "Operation 'sr_probe' not supported by this SR type", '', '']), 'SR.probe', host, { location: other }, 'iso', {});
  });
  await t.test('VDI.create of size 0 or less', async () => {
    await refused((e) => assert.deepEqual(e, ['INVALID_VALUE', 'virtual_size', '0']), 'VDI.create', vdiArgs(srA, 0));
    await refused((e) => assert.deepEqual(e, ['INVALID_VALUE', 'virtual_size', '-512']), 'VDI.create', vdiArgs(srA, -512));
  });
  await t.test('VDI.create beyond the SR', async () => {
    const sr = await api.call('SR.get_record', srA);
    await refused((e) => {
      assert.equal(e[0], 'SR_FULL');
      assert.equal(Number(e[1]), sr.physical_size * 2);
      assert.ok(Number(e[2]) < sr.physical_size);
    }, 'VDI.create', vdiArgs(srA, sr.physical_size * 2));
  });
  await t.test('VDI.create in an SR that is not there', () =>
    refused((e) => assert.deepEqual(e, ['HANDLE_INVALID', 'SR', 'OpaqueRef:nope']), 'VDI.create', vdiArgs('OpaqueRef:nope', MiB)));
  await t.test('VDI.create in an ISO library', async () => {
    const iso = await api.call('SR.create', host, { location: other }, 0, 'iso', '', 'iso', '', false, {});
    await refused((e) => assert.deepEqual(e, ['SR_OPERATION_NOT_SUPPORTED', iso]), 'VDI.create', vdiArgs(iso, MiB));
    await api.call('PBD.unplug', (await api.call('SR.get_PBDs', iso))[0]);
    await api.call('SR.forget', iso);
  });
  await t.test('a VDI of another SR where one of this SR is expected', async () => {
    // VDI.copy into a VDI that is not in the SR named.
    await refused((e) => assert.deepEqual(e, ['INVALID_VALUE', 'into_vdi', v]), 'VDI.copy', small, srB, 'OpaqueRef:NULL', v);
    // VDI.introduce of a location that belongs to another SR.
    await refused((e) => assert.deepEqual(e, ['VDI_LOCATION_MISSING', srB, vRec.location]), 'VDI.introduce', randomUUID(), 'x', '', srB, 'user', false, false, {}, vRec.location, {}, {});
    // VDI.copy into a VDI smaller than the source.
    await refused((e) => assert.deepEqual(e, ['VDI_TOO_SMALL', small, String(16 * MiB)]), 'VDI.copy', v, 'OpaqueRef:NULL', 'OpaqueRef:NULL', small);
  });
  await t.test('VDI.introduce of a location that is not an image', () =>
    refused((e) => assert.deepEqual(e, ['VDI_LOCATION_MISSING', srA, '../../etc/passwd']), 'VDI.introduce', randomUUID(), 'x', '', srA, 'user', false, false, {}, '../../etc/passwd', {}, {}));
  await t.test('the disks involved still hold their bytes', () => {
    assert.ok(hasPattern(path.join(dirA, vRec.location), 0x7e, 0, 1 * MiB));
    assert.ok(hasPattern(path.join(dirB, smallRec.location), 0, 0, 8 * MiB));
  });
});

test('SR and PBD lifecycle: unplug, forget, introduce, plug, destroy, make, probe', { skip: QEMU_MISSING }, async (t) => {
  const dir = tmp('xapid-life-');
  const dir2 = tmp('xapid-life2-');
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  });
  const { d, api, host } = await storageDaemon();
  t.after(() => d.cleanup());
  const sr = await fileSr(api, host, dir, 'life');
  const v = await api.call('VDI.create', vdiArgs(sr, 8 * MiB, 'kept'));
  const vRec = await api.call('VDI.get_record', v);
  writePattern(path.join(dir, vRec.location), 0x5c, 0, MiB);
  const srRec = await api.call('SR.get_record', sr);
  const pbd = srRec.PBDs[0];

  // Setters and the shared flag.
  await api.call('SR.set_name_label', sr, 'renamed');
  await api.call('SR.set_name_description', sr, 'words');
  await api.call('SR.set_physical_size', sr, 12345);
  await api.call('SR.set_shared', sr, true);
  const after = await api.call('SR.get_record', sr);
  assert.deepEqual([after.name_label, after.name_description, after.physical_size, after.shared], ['renamed', 'words', 12345, true]);
  await api.call('SR.set_shared', sr, false);
  await api.call('VDI.set_name_label', v, 'disk');
  await api.call('VDI.set_name_description', v, 'a disk');
  await api.call('VDI.set_read_only', v, true);
  assert.equal((await api.call('VDI.get_record', v)).read_only, true);
  await api.call('VDI.set_read_only', v, false);

  // Refusals while plugged.
  assert.deepEqual(await api.failure('SR.destroy', sr), ['SR_HAS_PBD', sr]);
  assert.deepEqual(await api.failure('SR.forget', sr), ['SR_HAS_PBD', sr]);
  assert.deepEqual(await api.failure('PBD.destroy', pbd), ['OPERATION_NOT_ALLOWED', 'PBD is currently attached']);
  assert.deepEqual(await api.failure('PBD.create', { host, SR: sr, device_config: { location: dir }, other_config: {} }), ['PBD_EXISTS', sr, host, pbd]);
  assert.ok(!(await api.call('SR.get_allowed_operations', sr)).includes('destroy'));

  // Unplugged: no VDI work, but forget and destroy become possible.
  await api.call('PBD.unplug', pbd);
  await api.call('PBD.unplug', pbd);
  assert.equal(await api.call('PBD.get_currently_attached', pbd), false);
  assert.deepEqual(await api.failure('VDI.create', vdiArgs(sr, MiB)), ['SR_HAS_NO_PBDS', sr]);
  assert.deepEqual(await api.failure('VDI.clone', v, {}), ['SR_HAS_NO_PBDS', sr]);
  assert.deepEqual(await api.failure('SR.scan', sr), ['SR_HAS_NO_PBDS', sr]);
  const ops = await api.call('SR.get_allowed_operations', sr);
  assert.ok(ops.includes('destroy') && ops.includes('forget') && !ops.includes('vdi_create'), ops.join());
  assert.ok(!(await api.call('VDI.get_allowed_operations', v)).includes('clone'));

  // forget: the records go, the data stays.
  await api.call('SR.forget', sr);
  assert.equal((await api.failure('SR.get_record', sr))[0], 'HANDLE_INVALID');
  assert.equal((await api.failure('VDI.get_record', v))[0], 'HANDLE_INVALID');
  assert.equal((await api.failure('PBD.get_record', pbd))[0], 'HANDLE_INVALID');
  assert.deepEqual(images(dir), [vRec.location]);

  // probe finds it; introduce + PBD.create + plug bring it back with its VDI.
  const xml: string = await api.call('SR.probe', host, { location: dir }, 'file', {});
  assert.match(xml, /^<\?xml version="1.0" \?>\n<SRlist>/);
  assert.ok(xml.includes(srRec.uuid));
  const back = await api.call('SR.introduce', srRec.uuid, 'back', '', 'file', '', false, {});
  assert.deepEqual(await api.failure('SR.introduce', srRec.uuid, 'twice', '', 'file', '', false, {}), ['SR_UUID_EXISTS', srRec.uuid]);
  const pbd2 = await api.call('PBD.create', { host, SR: back, device_config: { location: dir }, other_config: {} });
  await api.call('PBD.plug', pbd2);
  await api.call('PBD.plug', pbd2);
  const vBack = await api.call('VDI.get_by_uuid', vRec.uuid);
  assert.equal((await api.call('VDI.get_record', vBack)).SR, back);
  assert.ok(hasPattern(path.join(dir, vRec.location), 0x5c, 0, MiB));

  // PBD.set_device_config, then a plug with a wrong location fails and stays unplugged.
  await api.call('PBD.unplug', pbd2);
  await api.call('PBD.set_device_config', pbd2, { location: dir2 });
  assert.equal((await api.failure('PBD.plug', pbd2))[0], 'SR_BACKEND_FAILURE_47');
  assert.equal(await api.call('PBD.get_currently_attached', pbd2), false);
  await api.call('PBD.set_device_config', pbd2, { location: dir });
  await api.call('PBD.plug', pbd2);

  // destroy: data and marker removed, directory kept.
  await api.call('PBD.unplug', pbd2);
  await api.call('SR.destroy', back);
  assert.deepEqual(readdirSync(dir), []);
  assert.ok(existsSync(dir));
  assert.deepEqual(await api.call('VDI.get_all'), []);
  assert.deepEqual(await api.call('SR.get_all'), []);

  // make: storage without records (the old introduce flow).
  const uuid = await api.call('SR.make', host, { location: dir2 }, 0, 'made', '', 'file', '', {});
  assert.match(uuid, /^[0-9a-f-]{36}$/);
  assert.ok(readdirSync(dir2).includes('.xapid-sr.json'));
  assert.equal((await api.call('SR.get_by_name_label', 'made')).length, 0);
});
