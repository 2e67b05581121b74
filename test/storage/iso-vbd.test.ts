// The ISO library and VBDs: scan introduces each ISO as a read-only VDI, CD drives
// take media in and out, and VBD creation follows xapi's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { vmRecord } from '../helpers/api.js';
import { fileSr, MiB, QEMU_MISSING, storageDaemon, tmp, vdiArgs } from './helpers.js';

const vbd = (vm: string, vdi: string, over: Record<string, unknown> = {}) => ({
  VM: vm, VDI: vdi, userdevice: '0', bootable: false, mode: 'RW', type: 'Disk', unpluggable: true, empty: false,
  other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {}, ...over,
});

test('ISO library, CD drives and VBD rules', { skip: QEMU_MISSING }, async (t) => {
  const isoDir = tmp('xapid-iso-');
  const diskDir = tmp('xapid-isodisk-');
  t.after(() => {
    rmSync(isoDir, { recursive: true, force: true });
    rmSync(diskDir, { recursive: true, force: true });
  });
  writeFileSync(path.join(isoDir, 'debian.iso'), randomBytes(3 * MiB));
  writeFileSync(path.join(isoDir, 'tools.img'), randomBytes(1 * MiB));
  writeFileSync(path.join(isoDir, 'readme.txt'), 'not an image');
  mkdirSync(path.join(isoDir, 'folder.iso'));
  const { d, api, host } = await storageDaemon();
  t.after(() => d.cleanup());

  // ---- the library ----------------------------------------------------------------
  const iso = await api.call('SR.create', host, { location: isoDir }, 0, 'ISOs', '', 'iso', '', false, {});
  const srRec = await api.call('SR.get_record', iso);
  assert.equal(srRec.content_type, 'iso');
  const vdis = await Promise.all(srRec.VDIs.map((v: string) => api.call('VDI.get_record', v)));
  assert.deepEqual(vdis.map((v) => v.location).sort(), ['debian.iso', 'tools.img']);
  const deb = vdis.find((v) => v.location === 'debian.iso');
  assert.equal(deb.read_only, true);
  assert.equal(deb.name_label, 'debian.iso');
  assert.equal(deb.virtual_size, 3 * MiB);
  const debRef = srRec.VDIs[vdis.indexOf(deb)];
  assert.deepEqual(await api.failure('VDI.destroy', debRef), ['SR_OPERATION_NOT_SUPPORTED', iso]);
  assert.deepEqual(await api.failure('VDI.clone', debRef, {}), ['SR_OPERATION_NOT_SUPPORTED', iso]);
  assert.ok(!(await api.call('VDI.get_allowed_operations', debRef)).includes('destroy'));
  writeFileSync(path.join(isoDir, 'new.iso'), randomBytes(MiB));
  await api.call('SR.scan', iso);
  assert.equal((await api.call('SR.get_VDIs', iso)).length, 3);

  const diskSr = await fileSr(api, host, diskDir, 'disks');
  const disk = await api.call('VDI.create', vdiArgs(diskSr, 8 * MiB, 'disk'));
  const vm = await api.call('VM.create', vmRecord('storage-test-vm'));

  // ---- VBD creation rules ----------------------------------------------------------
  assert.deepEqual(await api.call('VM.get_allowed_VBD_devices', vm), Array.from({ length: 16 }, (_, i) => String(i)));
  const diskVbd = await api.call('VBD.create', vbd(vm, disk));
  assert.equal(await api.call('VBD.get_device', diskVbd), '');
  assert.equal(await api.call('VBD.get_currently_attached', diskVbd), false);
  assert.deepEqual(await api.call('VDI.get_VBDs', disk), [diskVbd]);
  assert.ok(!(await api.call('VM.get_allowed_VBD_devices', vm)).includes('0'));
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, disk, { userdevice: 'xvda' })), ['DEVICE_ALREADY_EXISTS', 'xvda']);
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, disk, { userdevice: 'hdz' })), ['INVALID_DEVICE', 'hdz']);
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, disk, { userdevice: '1', type: 'CD', mode: 'RW' })), ['VBD_CDS_MUST_BE_READONLY']);
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, 'OpaqueRef:NULL', { userdevice: '1', empty: true })), ['VBD_NOT_REMOVABLE_MEDIA', 'in constructor']);
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, disk, { userdevice: '1', type: 'CD', mode: 'RO' })), ['VDI_IS_NOT_ISO', disk, '']);
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, debRef, { userdevice: '1', mode: 'RW' })), ['VDI_READONLY', debRef]);
  const auto = await api.call('VBD.create', vbd(vm, debRef, { userdevice: 'autodetect', mode: 'RO', type: 'CD' }));
  assert.equal(await api.call('VBD.get_userdevice', auto), '1');
  await api.call('VBD.destroy', auto);

  // ---- CD drives ---------------------------------------------------------------------
  const cd = await api.call('VBD.create', vbd(vm, 'OpaqueRef:NULL', { userdevice: '3', type: 'CD', mode: 'RO', empty: true }));
  let cdRec = await api.call('VBD.get_record', cd);
  assert.deepEqual([cdRec.empty, cdRec.VDI], [true, 'OpaqueRef:NULL']);
  assert.ok(cdRec.allowed_operations.includes('insert') && !cdRec.allowed_operations.includes('eject'));
  assert.deepEqual(await api.failure('VBD.eject', cd), ['VBD_IS_EMPTY', cd]);
  assert.deepEqual(await api.failure('VBD.insert', cd, disk), ['VDI_IS_NOT_ISO', disk, '']);
  await api.call('VBD.insert', cd, debRef);
  cdRec = await api.call('VBD.get_record', cd);
  assert.deepEqual([cdRec.empty, cdRec.VDI], [false, debRef]);
  assert.ok(cdRec.allowed_operations.includes('eject'));
  assert.deepEqual(await api.failure('VBD.insert', cd, debRef), ['VBD_NOT_EMPTY', cd]);
  assert.deepEqual(await api.failure('VBD.insert', diskVbd, debRef), ['VBD_NOT_REMOVABLE_MEDIA', diskVbd]);
  assert.deepEqual(await api.failure('VBD.eject', diskVbd), ['VBD_NOT_REMOVABLE_MEDIA', diskVbd]);
  await api.call('VBD.assert_attachable', cd);
  await api.call('VBD.eject', cd);
  assert.deepEqual(await api.call('VBD.get_VDI', cd), 'OpaqueRef:NULL');
  await api.call('VBD.insert', cd, debRef);

  // ---- hot-plug needs a running VM; mode changes need a halted one ----------------------
  assert.deepEqual(await api.failure('VBD.plug', diskVbd), ['VM_BAD_POWER_STATE', vm, 'running', 'halted']);
  assert.deepEqual(await api.failure('VBD.unplug', diskVbd), ['VM_BAD_POWER_STATE', vm, 'running', 'halted']);
  assert.deepEqual(await api.failure('VBD.unplug_force', diskVbd), ['VM_BAD_POWER_STATE', vm, 'running', 'halted']);
  assert.ok(!(await api.call('VBD.get_allowed_operations', diskVbd)).includes('plug'));
  await api.call('VBD.assert_attachable', diskVbd);
  await api.call('VBD.set_mode', diskVbd, 'RO');
  assert.equal(await api.call('VBD.get_mode', diskVbd), 'RO');
  assert.deepEqual(await api.failure('VBD.set_mode', cd, 'RW'), ['VBD_CDS_MUST_BE_READONLY']);
  await api.call('VDI.set_read_only', disk, true);
  assert.deepEqual(await api.failure('VBD.set_mode', diskVbd, 'RW'), ['VDI_READONLY', disk]);
  assert.deepEqual(await api.failure('VBD.create', vbd(vm, disk, { userdevice: '5' })), ['VDI_READONLY', disk]);
  await api.call('VDI.set_read_only', disk, false);

  // ---- an ISO that goes away: still named by a drive, so marked missing ------------------
  rmSync(path.join(isoDir, 'debian.iso'));
  rmSync(path.join(isoDir, 'new.iso'));
  await api.call('SR.scan', iso);
  assert.equal(await api.call('VDI.get_missing', debRef), true);
  assert.deepEqual(await api.failure('VBD.assert_attachable', cd), ['VDI_MISSING', iso, debRef]);
  assert.equal((await api.call('SR.get_VDIs', iso)).length, 2, 'the unused vanished ISO is forgotten');
  writeFileSync(path.join(isoDir, 'debian.iso'), randomBytes(MiB));
  await api.call('SR.scan', iso);
  assert.equal(await api.call('VDI.get_missing', debRef), false);

  // ---- destroying a VDI takes its VBDs; PBD.unplug of an SR whose VDI a VBD names works while detached
  await api.call('VDI.destroy', disk);
  assert.equal((await api.failure('VBD.get_record', diskVbd))[0], 'HANDLE_INVALID');
  await api.call('VBD.destroy', cd);
  assert.deepEqual(await api.call('VM.get_VBDs', vm), []);
  const pbd = (await api.call('SR.get_PBDs', iso))[0];
  await api.call('PBD.unplug', pbd);
  await api.call('SR.destroy', iso);
  assert.equal((await api.call('SR.get_all')).includes(iso), false);
  // The library's files are not the SR's to delete.
  assert.deepEqual((await import('node:fs')).readdirSync(isoDir).sort(), ['debian.iso', 'folder.iso', 'readme.txt', 'tools.img']);
});
