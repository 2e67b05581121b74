// Answers built from the store's kept records, end to end: a big get_all_records goes
// out part by part with the right Content-Length (multi-byte text included) on a
// connection that stays usable; after a change, every read and the event feed show it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ObjectStore } from '../../src/db/store.js';
import { startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { connect, type Api } from '../helpers/api.js';
import { jsonAnswer, request, xmlAnswer, xmlBody } from './wire.js';

const COUNT = 700; // enough for both answers to pass 1 MiB, where they are sent in parts

let d: TestDaemon;
let api: Api;
const refs: string[] = [];

before(async () => {
  const stateDir = tempDir('xapid-big-');
  const first = await startDaemon({ stateDir });
  await first.stop();
  const store = new ObjectStore(path.join(stateDir, 'xapid.db'));
  try {
    store.tx(() => {
      for (let i = 0; i < COUNT; i++) {
        refs.push(store.create('VM', {
          name_label: `vm ${i} — é <&>`, name_description: 'x'.repeat(200), power_state: 'Halted',
          other_config: { note: `ünïcödé ${i}`, more: 'y'.repeat(300) }, platform: { acpi: '1' },
        }));
      }
    });
  } finally {
    store.close();
  }
  d = await startDaemon({ stateDir });
  api = await connect(d.url);
});
after(async () => {
  await d?.stop();
  if (d) rmSync(d.stateDir, { recursive: true, force: true });
});

/** A keep-alive agent that counts the connections it opens. */
function countingAgent(): { agent: http.Agent; opened: () => number } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let n = 0;
  const create = agent.createConnection.bind(agent);
  agent.createConnection = ((...args: Parameters<typeof create>) => {
    n++;
    return create(...args);
  }) as typeof agent.createConnection;
  return { agent, opened: () => n };
}

test('a big get_all_records arrives whole over both protocols, and the connection stays open', async (t) => {
  const { agent, opened } = countingAgent();
  t.after(() => agent.destroy());
  const xml = await request(d.url, '/', xmlBody('VM.get_all_records', [api.session]), { headers: { 'content-type': 'text/xml' }, agent });
  assert.equal(xml.status, 200);
  assert.equal(xml.headers['content-type'], 'text/xml');
  assert.equal(xml.headers['access-control-allow-origin'], '*');
  assert.ok(Buffer.byteLength(xml.text) > 1 << 20);
  assert.equal(Number(xml.headers['content-length']), Buffer.byteLength(xml.text));
  const x = await xmlAnswer(xml.text);
  assert.ok(x.ok);

  const json = await request(d.url, '/jsonrpc', JSON.stringify({ jsonrpc: '2.0', method: 'VM.get_all_records', params: [api.session], id: 'big' }), {
    headers: { 'content-type': 'application/json' }, agent,
  });
  assert.equal(json.headers['content-type'], 'application/json');
  assert.ok(Buffer.byteLength(json.text) > 1 << 20);
  assert.equal(Number(json.headers['content-length']), Buffer.byteLength(json.text));
  assert.equal(JSON.parse(json.text).id, 'big');
  const j = jsonAnswer(json.text);
  assert.ok(j.ok);

  // The same objects, the same text, whichever protocol.
  assert.deepEqual(Object.keys(x.value).sort(), Object.keys(j.value).sort());
  for (const ref of refs) {
    assert.equal(x.value[ref].name_label, j.value[ref].name_label);
    assert.deepEqual(x.value[ref].other_config, j.value[ref].other_config);
  }
  assert.equal(j.value[refs[5]!].name_label, 'vm 5 — é <&>');
  assert.deepEqual(j.value[refs[5]!].other_config, { note: 'ünïcödé 5', more: 'y'.repeat(300) });

  // A small call after the big ones, on the same connection.
  const small = await request(d.url, '/', xmlBody('VM.get_name_label', [api.session, refs[0]]), { headers: { 'content-type': 'text/xml' }, agent });
  assert.deepEqual(await xmlAnswer(small.text), { ok: true, value: 'vm 0 — é <&>' });
  assert.equal(opened(), 1, 'one keep-alive connection for all three calls');
});

test('after a change, get_record, get_all_records (both protocols) and event.from all show it', async () => {
  const vm = refs[7]!;
  const xmlRecord = async () => (await xmlAnswer((await request(d.url, '/', xmlBody('VM.get_record', [api.session, vm]), { headers: { 'content-type': 'text/xml' } })).text));
  const xmlAll = async () => (await xmlAnswer((await request(d.url, '/', xmlBody('VM.get_all_records', [api.session]), { headers: { 'content-type': 'text/xml' } })).text));
  // Read everything once, so that the answers are kept before the change.
  assert.equal((await xmlRecord() as { value: any }).value.name_label, 'vm 7 — é <&>');
  assert.equal((await api.call('VM.get_record', vm)).name_label, 'vm 7 — é <&>');
  assert.equal((await api.call('VM.get_all_records'))[vm].name_label, 'vm 7 — é <&>');
  const token = (await api.call('event.from', ['vm'], '', 0)).token as string;

  await api.call('VM.set_name_label', vm, 'renamed');
  await api.call('VM.add_to_other_config', vm, 'k', 'v');

  assert.equal((await xmlRecord() as { value: any }).value.name_label, 'renamed');
  const all = (await xmlAll() as { value: any }).value;
  assert.equal(all[vm].name_label, 'renamed');
  assert.equal(all[vm].other_config.k, 'v');
  assert.equal(all[refs[8]!].name_label, 'vm 8 — é <&>');
  assert.equal((await api.call('VM.get_record', vm)).name_label, 'renamed');
  assert.equal((await api.call('VM.get_all_records'))[vm].other_config.k, 'v');
  assert.equal(await api.call('VM.get_name_label', vm), 'renamed');
  const events = await api.call('event.from', ['vm'], token, 5);
  assert.deepEqual(events.events.map((e: any) => [e.operation, e.ref, e.snapshot.name_label, e.snapshot.other_config.k]), [['mod', vm, 'renamed', 'v']]);

  await api.call('VM.destroy', vm);
  assert.equal((await xmlAll() as { value: any }).value[vm], undefined);
  assert.deepEqual(await api.failure('VM.get_record', vm), ['HANDLE_INVALID', 'VM', vm]);
});
