// Tasks and events with the classic Python XenAPI module (Debian's python3-os-xenapi).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ROOT_PASSWORD, startDaemon } from '../helpers/daemon.js';

const SCRIPT = fileURLToPath(new URL('../../../test/events/py/tasks_events.py', import.meta.url));
const missing = existsSync('/usr/lib/python3/dist-packages/os_xenapi/client/XenAPI.py') ? false : 'the Python XenAPI module (python3-os-xenapi) is not installed';

test('XenAPI.py: Async.VM.clone to success, a cancelled task, an event.next loop', { skip: missing }, async (t) => {
  const d = await startDaemon({ args: ['--network-mode', 'none'] });
  t.after(() => d.cleanup());
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('/usr/bin/python3', [SCRIPT, d.url, ROOT_PASSWORD], { timeout: 60_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
  });
  const out = JSON.parse(stdout);
  assert.equal(out.clone_task.status, 'success');
  assert.equal(out.clone_task.name_label, 'Async.VM.clone');
  assert.equal(out.clone_task.progress, 1);
  assert.match(out.clone_task.result, /^<value>OpaqueRef:[0-9a-f-]+<\/value>$/);
  assert.equal(out.clone_name, 'cloned by python');
  assert.equal(out.cancelled_status, 'cancelled');
  assert.equal(out.second_cancel, 'OPERATION_NOT_ALLOWED');
  assert.ok(out.events.some((e: unknown[]) => e[0] === 'vm' && e[1] === 'mod' && e[2] === out.clone && e[3] === 'renamed by python'), JSON.stringify(out.events));
});
