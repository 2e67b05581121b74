// host.disable / host.enable: a disabled host refuses new VMs (HOST_DISABLED) while the
// running ones go on; auto_enable decides whether a toolstack restart enables it again.
// host.list_methods answers the API's messages.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ObjectStore } from '../../src/db/store.js';
import { XenApiFailure } from '../helpers/api.js';
import { pvRecord, reconnect, tmp, vmDaemon, waitPower, type VmDaemon } from '../vm/helpers.js';

const stateDir = tmp('xapid-host-admin-');
let v: VmDaemon | undefined;
after(async () => {
  await v?.d.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const refused = (code: string) => (e: unknown) => e instanceof XenApiFailure && e.description[0] === code;

async function restart(): Promise<VmDaemon> {
  await v!.d.stop();
  v = await vmDaemon({ stateDir });
  return v;
}

test('a disabled host keeps its running VMs and refuses new ones; auto_enable decides what a restart does', async () => {
  v = await vmDaemon({ stateDir });
  let { api, host } = v;
  const running = await api.call('VM.create', pvRecord('keeps running'));
  const later = await api.call('VM.create', pvRecord('starts later'));
  await api.call('VM.start', running, false, false);
  await waitPower(api, running, 'Running');

  await api.call('host.disable', host);
  assert.equal(await api.call('host.get_enabled', host), false);
  assert.equal(await api.call('VM.get_power_state', running), 'Running', 'running VMs go on');
  await assert.rejects(api.call('VM.start', later, false, false), refused('HOST_DISABLED'));
  await assert.rejects(api.call('VM.assert_can_boot_here', later, host), refused('HOST_DISABLED'));

  // auto_enable left out (true, as API 1.1 clients send it): a restart enables the host.
  ({ api, host } = await restart());
  assert.equal(await api.call('host.get_enabled', host), true);

  // auto_enable=false: disabled across restarts until host.enable.
  await api.call('host.disable', host, false);
  ({ api, host } = await restart());
  assert.equal(await api.call('host.get_enabled', host), false);
  await assert.rejects(api.call('VM.start', later, false, false), refused('HOST_DISABLED'));
  await api.call('host.enable', host);
  assert.equal(await api.call('host.get_enabled', host), true);
  await api.call('VM.start', later, false, false);
  await waitPower(api, later, 'Running');
  ({ api, host } = await restart());
  assert.equal(await api.call('host.get_enabled', host), true, 'host.enable cleared the lasting disable');
});

test('host.disable of a host that is not this one is refused, and host.list_methods lists the API', async () => {
  v ??= await vmDaemon({ stateDir });
  const { api } = await reconnect(v.d);
  await assert.rejects(api.call('host.disable', 'OpaqueRef:NULL'), refused('HANDLE_INVALID'));
  // Another host's record (as a pool would have): its administration is not done here.
  const store = new ObjectStore(path.join(stateDir, 'xapid.db'));
  const other = store.create('host', { name_label: 'another host', enabled: true });
  store.close();
  await assert.rejects(api.call('host.disable', other), refused('OPERATION_NOT_ALLOWED'));
  await assert.rejects(api.call('host.enable', other), refused('OPERATION_NOT_ALLOWED'));
  assert.equal(await api.call('host.get_enabled', other), true, 'nothing changed');
  const methods = await api.call('host.list_methods') as string[];
  for (const m of ['VM.start', 'host.disable', 'session.login_with_password', 'VM.get_record']) assert.ok(methods.includes(m), m);
  assert.ok(!methods.some((m) => m.startsWith('Async.')));
});
