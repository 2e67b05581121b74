// Real Python clients against a real daemon: the standard library's xmlrpc.client, and
// the classic XenAPI.py module (Debian's python3-os-xenapi) over TCP and over the local
// Unix socket. Each script prints what it observed as JSON; the checks are here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT_PASSWORD, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { call, loginAt, value } from '../rpc/wire.js';
import { runPython as runScript } from '../helpers/python.js';

// The scripts stay in the source tree; tsc does not copy them into dist/.
const PY_DIR = fileURLToPath(new URL('../../../test/clients/py/', import.meta.url));
const REF = /^OpaqueRef:[0-9a-f-]{36}$/;
const DATETIME = /^\d{8}T\d{2}:\d{2}:\d{2}Z$/;
const BAD_REF = 'OpaqueRef:00000000-0000-0000-0000-00000000dead';

function runPython(script: string, args: string[]): Promise<any> {
  return runScript(path.join(PY_DIR, script), args);
}

describe('Python xmlrpc.client (standard library)', () => {
  let d: TestDaemon;
  let out: any;
  before(async () => {
    d = await startDaemon();
    out = await runPython('stdlib_xmlrpc.py', [d.url, ROOT_PASSWORD]);
  });
  after(() => d?.cleanup());

  test('logs in on the bare URL, / and /RPC2', () => {
    assert.deepEqual(out.login.map((l: any) => [l.path, l.status]), [['', 'Success'], ['/', 'Success'], ['/RPC2', 'Success']]);
    for (const l of out.login) assert.match(l.value, REF);
  });

  test('pool.get_all and VM.get_all_records decode to refs and records', () => {
    assert.equal(out.pools.length, 1);
    assert.match(out.pools[0], REF);
    assert.ok(out.vm_count >= 1);
    assert.match(out.vm_ref, REF);
    assert.deepEqual(out.api_version, ['1', '1']);
  });

  test('ints arrive as str, bools as bool, floats as float, maps as dict, sets as list, datetimes as DateTime', () => {
    assert.deepEqual(out.vm_field_types, {
      uuid: 'str', name_label: 'str', power_state: 'str', memory_static_max: 'str', VCPUs_max: 'str', domid: 'str',
      user_version: 'str', is_a_template: 'bool', is_control_domain: 'bool', HVM_shadow_multiplier: 'float',
      other_config: 'dict', VBDs: 'list', resident_on: 'str',
    });
    assert.match(out.vm_values.memory_static_max, /^\d+$/);
    assert.equal(out.vm_values.domid, '0');
    assert.equal(out.vm_values.is_a_template, false);
    assert.equal(out.vm_values.is_control_domain, true);
    assert.equal(out.vm_values.power_state, 'Running');
    assert.deepEqual(out.api_version_types, ['str', 'str']);
    assert.equal(out.last_active_type, 'DateTime');
    assert.match(out.last_active, DATETIME);
    assert.equal(out.session_pool_type, 'bool');
    assert.deepEqual(out.vm_metrics_types, {
      start_time: 'DateTime', install_time: 'DateTime', last_updated: 'DateTime', memory_actual: 'str', VCPUs_number: 'str', VCPUs_CPU: 'dict',
    });
    assert.equal(out.install_time, '19700101T00:00:00Z');
  });

  test('failures are Status=Failure answers with the ErrorDescription', () => {
    assert.deepEqual(out.failure, { Status: 'Failure', ErrorDescription: ['HANDLE_INVALID', 'VM', BAD_REF] });
    assert.deepEqual(out.bad_login, { Status: 'Failure', ErrorDescription: ['SESSION_AUTHENTICATION_FAILED', 'root', 'Authentication failure'] });
    assert.deepEqual(out.float_for_int, { Status: 'Failure', ErrorDescription: ['FIELD_TYPE_ERROR', 'value'] });
    assert.deepEqual(out.bool_for_string, { Status: 'Failure', ErrorDescription: ['FIELD_TYPE_ERROR', 'value'] });
  });

  test('values Python sends (<int>, <struct>, <string> with markup and non-ASCII) round-trip', () => {
    assert.equal(out.user_version_after, '42');
    assert.deepEqual(out.other_config_after, { from: 'python', n: '1' });
    assert.equal(out.label_after, out.label_sent);
  });

  test('system.listMethods is a plain list without Async names', () => {
    assert.equal(out.list_methods_type, 'list');
    assert.ok(out.list_methods_count > 500);
    assert.deepEqual(out.list_methods_async, []);
    assert.deepEqual(out.list_methods_has, [true, true]);
  });

  test('logout answers Success with an empty Value, then the session is invalid', async () => {
    assert.deepEqual(out.logout, { Status: 'Success', Value: '' });
    assert.deepEqual(out.after_logout, { Status: 'Failure', ErrorDescription: ['SESSION_INVALID', out.session] });
    // and the daemon agrees, over JSON-RPC too
    assert.deepEqual(await call(d.url, 'json', 'pool.get_all', [out.session]), { ok: false, error: ['SESSION_INVALID', out.session] });
  });
});

/** Checks common to the module's runs over TCP and over the Unix socket. */
async function checkXenApiRun(d: TestDaemon, out: any): Promise<void> {
  assert.match(out.handle, REF);
  assert.equal(out.api_version, '1.1');
  for (const f of ['uuid', 'name_label', 'name_description', 'master', 'default_SR', 'suspend_image_SR', 'crash_dump_SR', 'other_config']) {
    assert.ok(out.pool_record_keys.includes(f), f);
  }
  assert.deepEqual(
    { ...out.host, name_label: typeof out.host.name_label },
    { name_label: 'string', API_version_major: '1', API_version_minor: '1', API_version_vendor: 'xapid', enabled: true },
  );
  assert.equal(out.host_software_version_type, 'dict');
  assert.ok(out.vm_count >= 1);
  const vms = Object.values(out.vms) as any[];
  assert.equal(vms.length, 1, 'one control domain');
  assert.equal(vms[0].power_state, 'Running');
  assert.equal(vms[0].is_control_domain, true);
  assert.match(vms[0].memory_static_max, /^\d+$/);
  assert.equal(out.vm_by_uuid.length, out.vm_count);
  assert.ok(out.vm_by_uuid.every((x: boolean) => x === true), 'VM.get_by_uuid finds every VM');
  assert.equal(out.host_by_label, true);
  assert.deepEqual(out.handle_invalid, ['HANDLE_INVALID', 'VM', BAD_REF]);
  assert.match(out.handle_invalid_str, /HANDLE_INVALID/);
  assert.deepEqual(out.unknown, ['MESSAGE_METHOD_UNKNOWN', 'VM.no_such_message']);
  // SESSION_INVALID made the module log in again by itself
  assert.equal(out.relogin_pools, true);
  assert.equal(out.relogin_new_handle, true);
  // logout cleared the handle and really ended both sessions on the daemon
  assert.equal(out.handle_after_logout, null);
  for (const s of [out.first_handle, out.last_handle]) {
    assert.deepEqual(await call(d.url, 'json', 'pool.get_all', [s]), { ok: false, error: ['SESSION_INVALID', s] });
  }
}

describe('Python XenAPI module (python3-os-xenapi)', () => {
  let d: TestDaemon;
  let dir: string;
  before(async () => {
    // UDSTransport maps every "_" of the URL host to "/", so the socket path must have none.
    const base = tmpdir().includes('_') ? '/tmp' : tmpdir();
    dir = mkdtempSync(path.join(base, 'xapid-py-'));
    assert.ok(!dir.includes('_'));
    d = await startDaemon({ stateDir: dir, socket: true });
  });
  after(async () => {
    await d?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('over HTTP: login (with its API-version probe), records, Failure details, relogin, logout', async () => {
    const out = await runPython('xenapi_module.py', ['tcp', d.url, ROOT_PASSWORD]);
    assert.deepEqual(out.bad_login, ['SESSION_AUTHENTICATION_FAILED', 'root', 'Authentication failure']);
    await checkXenApiRun(d, out);
  });

  test('over the Unix socket: login needs no password', async (t) => {
    assert.ok(d.socket && !d.socket.includes('_'));
    const out = await runPython('xenapi_module.py', ['unix', d.socket!]);
    // The shipped UDSTransport is Python-2 only (see the script); record which one ran.
    assert.ok(out.uds_transport_as_shipped === 'works' || /send_request\(\)/.test(out.uds_transport_as_shipped), out.uds_transport_as_shipped);
    if (out.uds_transport_as_shipped !== 'works') t.diagnostic(`os_xenapi UDSTransport as shipped: ${out.uds_transport_as_shipped}`);
    await checkXenApiRun(d, out);
    // a socket session is an ordinary session: usable over TCP as well until logged out
    const s = await loginAt({ socket: d.socket! }, '');
    assert.equal((await value(d.url, 'xml', 'pool.get_all', [s])).length, 1);
  });
});
