// The lvm SR on a loop device over a temporary file (never a real disk). Where the
// machine lacks something (root, losetup, lvm2, device-mapper) the test says so and
// runs what it still can.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileSr, differences, hasPattern, haveTool, MiB, QEMU_MISSING, storageDaemon, tmp, vdiArgs, writePattern } from './helpers.js';
import { NEED_KERNEL } from '../network/netns.js';
import { lvmUdevArgs } from '../../storage-plugins/lib/lvm-config.js';

const lvmEnv = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' };

/** Activates a volume for the test to read (with the plugin's options where udev is not running). */
function activate(dev: string, lv: string): void {
  const r = spawnSync('lvm', ['lvchange', '--devices', dev, ...lvmUdevArgs(), '-ay', '-K', lv], { env: lvmEnv, encoding: 'utf8' });
  assert.equal(r.status, 0, `lvchange -ay ${lv}: ${r.stderr}`);
}

function whyNot(): string | false {
  if (NEED_KERNEL) return false; // every requirement is promised: let a missing one fail
  if (QEMU_MISSING) return QEMU_MISSING;
  if (process.getuid?.() !== 0) return 'loop devices and LVM need root';
  if (!haveTool('losetup')) return 'losetup (util-linux) is not installed';
  if (!haveTool('lvm')) return 'lvm2 is not installed';
  if (!existsSync('/dev/loop-control')) return 'this kernel offers no loop devices (/dev/loop-control)';
  return false;
}

const dmWhyNot = (): string | false =>
  NEED_KERNEL ? false : readFileSync('/proc/misc', 'utf8').includes('device-mapper') ? false : 'this kernel has no device-mapper (/proc/misc), so logical volumes cannot be made';

function vgs(dev: string): string[] {
  const r = spawnSync('lvm', ['vgs', '--devices', dev, '--noheadings', '-o', 'vg_name'], { env: lvmEnv, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').map((s) => s.trim()).filter(Boolean) : [];
}

test('lvm SR on a loop device', { skip: whyNot() }, async (t) => {
  const work = tmp('xapid-lvm-');
  const backing = path.join(work, 'disk.img');
  writeFileSync(backing, '');
  truncateSync(backing, 512 * MiB);
  let dev: string;
  try {
    dev = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    t.skip(`no loop device could be set up here: ${(e as Error).message.split('\n')[0]}`);
    return;
  }
  const fileDir = tmp('xapid-lvm-file-');
  t.after(() => {
    for (const vg of vgs(dev)) spawnSync('lvm', ['vgremove', '--devices', dev, ...lvmUdevArgs(), '-f', vg], { env: lvmEnv });
    spawnSync('lvm', ['pvremove', '--devices', dev, dev], { env: lvmEnv });
    spawnSync('losetup', ['-d', dev]);
    rmSync(work, { recursive: true, force: true });
    rmSync(fileDir, { recursive: true, force: true });
  });
  const { d, api, host } = await storageDaemon();
  t.after(() => d.cleanup());

  const sr = await api.call('SR.create', host, { device: dev }, 0, 'lvm', '', 'lvm', '', false, {});
  const rec = await api.call('SR.get_record', sr);
  const vg = `VG_XenStorage-${rec.uuid}`;
  assert.deepEqual(vgs(dev), [vg], 'the volume group is on the loop device');
  assert.ok(rec.physical_size > 400 * MiB && rec.physical_size <= 512 * MiB, String(rec.physical_size));
  assert.equal((await api.call('PBD.get_record', rec.PBDs[0])).currently_attached, true);
  const xml: string = await api.call('SR.probe', host, { device: dev }, 'lvm', {});
  assert.ok(xml.includes(rec.uuid) && xml.includes(`<Devlist>\n\t\t\t${dev}`), xml);
  assert.equal((await api.failure('SR.create', host, { device: dev }, 0, 'again', '', 'lvm', '', false, {}))[0], 'SR_BACKEND_FAILURE_42');
  assert.deepEqual(vgs(dev), [vg]);

  const dm = dmWhyNot();
  if (dm) {
    await t.test('volumes', { skip: dm }, () => undefined);
    // What can be checked without device-mapper: the failure is precise and harmless.
    const e = await api.failure('VDI.create', vdiArgs(sr, 16 * MiB));
    assert.equal(e[0], 'SR_BACKEND_FAILURE_1002');
    assert.match(e[2]!, /device-mapper/i);
    assert.deepEqual(await api.call('SR.get_VDIs', sr), []);
    await api.call('SR.scan', sr);
    assert.deepEqual(await api.call('SR.get_VDIs', sr), [], 'the SR is still usable and still empty');
  } else {
    await t.test('volumes: create, write, snapshot, clone, resize, copy, destroy', async () => {
      const v = await api.call('VDI.create', vdiArgs(sr, 64 * MiB, 'lv'));
      const vRec = await api.call('VDI.get_record', v);
      assert.equal(vRec.location, `LV-${vRec.uuid}`);
      const lvPath = `/dev/${vg}/${vRec.location}`;
      activate(dev, `${vg}/${vRec.location}`);
      writePattern(lvPath, 0x3c, 0, 4 * MiB, 'raw');
      const snap = await api.call('VDI.snapshot', v, {});
      const sRec = await api.call('VDI.get_record', snap);
      writePattern(lvPath, 0x4d, 0, 1 * MiB, 'raw');
      activate(dev, `${vg}/${sRec.location}`);
      assert.ok(hasPattern(`/dev/${vg}/${sRec.location}`, 0x3c, 0, 4 * MiB, 'raw'), 'the snapshot keeps its data');
      const clone = await api.call('VDI.clone', v, {});
      await api.call('VDI.destroy', v);
      const cRec = await api.call('VDI.get_record', clone);
      activate(dev, `${vg}/${cRec.location}`);
      assert.ok(hasPattern(`/dev/${vg}/${cRec.location}`, 0x4d, 0, 1 * MiB, 'raw'), 'the clone outlives its origin');
      assert.ok(hasPattern(`/dev/${vg}/${sRec.location}`, 0x3c, 0, 4 * MiB, 'raw'), 'so does the snapshot');
      await api.call('VDI.resize', clone, 96 * MiB);
      assert.ok((await api.call('VDI.get_virtual_size', clone)) >= 96 * MiB);
      const fsr = await fileSr(api, host, fileDir, 'file');
      const copy = await api.call('VDI.copy', snap, fsr);
      const cp = await api.call('VDI.get_record', copy);
      // The copy attached the snapshot and let it go again, which deactivates its volume.
      activate(dev, `${vg}/${sRec.location}`);
      assert.equal(differences(`/dev/${vg}/${sRec.location}`, path.join(fileDir, cp.location), 'raw', 'qcow2'), '');
      for (const x of [snap, clone, copy]) await api.call('VDI.destroy', x);
    });
  }

  await api.call('PBD.unplug', rec.PBDs[0]);
  await api.call('SR.destroy', sr);
  assert.deepEqual(vgs(dev), [], 'the volume group is gone');
  assert.equal(spawnSync('blkid', ['-p', dev]).status, 2, 'no LVM label is left on the device');
});
