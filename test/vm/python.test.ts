// The whole life of a VM driven by the classic Python XenAPI module (Debian's
// python3-os-xenapi) against a real daemon on the simulator, with a real file SR.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ROOT_PASSWORD } from '../helpers/daemon.js';
import { fileSr, vmDaemon, type VmDaemon } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../../test/vm/py/flow.py', import.meta.url));
const missing = existsSync('/usr/lib/python3/dist-packages/os_xenapi/client/XenAPI.py') ? false : 'the Python XenAPI module (Debian python3-os-xenapi) is not installed';

let v: VmDaemon;
let dir: string;
before(async () => {
  if (missing) return;
  v = await vmDaemon();
  ({ dir } = await fileSr(v.api, v.host, v.pool));
});
after(async () => {
  await v?.d.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

test('clone a template, provision, start, pause, unpause, suspend, resume, reboot, shutdown, destroy', { skip: missing }, async () => {
  const out = await new Promise<any>((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, v.d.url, ROOT_PASSWORD], { timeout: 120_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`flow.py failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`flow.py printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
  assert.ok(out.template_count >= 1);
  assert.equal(out.clone_is_template, true);
  assert.deepEqual(out.after_provision, { is_a_template: false, vbds: 1 });
  assert.deepEqual(out.allowed_before_start, ['clone', 'copy', 'destroy', 'make_into_template', 'start', 'start_on']);
  assert.deepEqual(out.vbd_attached, [true, 'xvda']);
  const states = out.steps.map((s: any) => [s.step, s.power_state]);
  assert.deepEqual(states, [
    ['provision', 'Halted'], ['start', 'Running'], ['pause', 'Paused'], ['unpause', 'Running'], ['suspend', 'Suspended'],
    ['resume', 'Running'], ['clean_reboot', 'Running'], ['clean_shutdown', 'Halted'], ['hard_shutdown', 'Halted'],
  ]);
  const domids = out.steps.map((s: any) => Number(s.domid));
  assert.ok(domids[1] > 0 && domids[5] > domids[1] && domids[6] > domids[5], `new domains at start, resume and reboot: ${domids}`);
  assert.equal(out.pause_twice[0], 'VM_BAD_POWER_STATE');
  assert.deepEqual(out.pause_twice.slice(2), ['running', 'paused']);
  assert.equal(out.suspend_vdi_type, 'suspend');
  assert.deepEqual(out.async_start, ['success', 'Running']);
  assert.equal(out.vm_gone, true);
  assert.equal(out.vdis_destroyed, 1);
});
