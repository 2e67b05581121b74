// The storage flow end to end with the classic XenAPI.py module, as a Python
// administrator's script would do it (the script is test/storage/py/storage_e2e.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT_PASSWORD } from '../helpers/daemon.js';
import { MiB, QEMU_MISSING, storageDaemon, tmp } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../../test/storage/py/storage_e2e.py', import.meta.url));
const HAVE_XENAPI = existsSync('/usr/lib/python3/dist-packages/os_xenapi/client/XenAPI.py');

test('Python XenAPI: create, write, snapshot, clone, copy, check bytes, destroy, space back', {
  skip: QEMU_MISSING || (!HAVE_XENAPI && 'python3-os-xenapi is not installed'),
}, async (t) => {
  const dirA = tmp('xapid-py-a-');
  const dirB = tmp('xapid-py-b-');
  t.after(() => {
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  });
  const { d } = await storageDaemon();
  t.after(() => d.cleanup());
  const out: any = await new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, d.url, ROOT_PASSWORD, dirA, dirB], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeout: 240_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`storage_e2e.py failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`storage_e2e.py printed no JSON:\n${stdout}\n${stderr}`));
        }
      });
  });

  assert.equal(out.sr_a.type, 'file');
  assert.equal(out.disk.virtual_size, String(128 * MiB), 'XML-RPC carries ints as strings to XenAPI.py');
  assert.deepEqual(out.disk.other_config, { purpose: 'e2e' });
  assert.ok(out.allocated_with_data >= 33 * MiB, `data really written: ${out.allocated_with_data}`);
  assert.deepEqual(out.bytes, {
    snapshot_old_data: true, clone_old_data: true, disk_new_data: true, copy_equals_disk: true, copy_new_data: true,
  });
  assert.equal(out.copy_sr, true);
  assert.equal(out.snapshot.name_label, 'e2e disk');
  assert.equal(out.clone.virtual_size, String(128 * MiB));
  assert.equal(Number(out.sr_b_after_copy.virtual_allocation), 128 * MiB);
  assert.ok(out.allocated_full.b >= 33 * MiB, 'the copy holds the data');
  assert.ok(out.allocated_full.a < out.allocated_with_data + 8 * MiB, 'snapshot and clone share the data instead of copying it');
  assert.deepEqual(out.after_vdi_destroy, { a: ['.xapid-sr.json'], b: ['.xapid-sr.json'], vdis_a: [], vdis_b: [] });
  assert.deepEqual(out.after_sr_destroy, { a: [], b: [], srs: 0, allocated: 0 });
  assert.equal(out.disk_gone, true);
  assert.ok(path.isAbsolute(dirA));
});
