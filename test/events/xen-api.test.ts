// Xen Orchestra's connector (npm `xen-api`) watching the VM collection through
// event.from: every add, modification and removal made through the API shows up in
// its object cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, startDaemon } from '../helpers/daemon.js';
import { vmRecord } from '../helpers/api.js';

// A variable, so that tsc does not look for type declarations the package lacks.
const XEN_API = 'xen-api';
// xen-api reports its event loop's retries (e.g. the 503 of a daemon shutting down) with console.warn.
console.warn = () => undefined;

async function waitFor(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`xen-api's collection never showed ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('xen-api: the watched collection sees each add, mod and del of a VM', { timeout: 60_000 }, async (t) => {
  const d = await startDaemon({ args: ['--network-mode', 'none'] });
  t.after(() => d.cleanup());
  const { Xapi } = (await import(XEN_API)) as any;
  const xapi = new Xapi({ url: d.url, auth: { user: 'root', password: ROOT_PASSWORD }, watchEvents: ['VM'], debounce: 10, eventPollDelay: 50 });
  await xapi.connect();
  t.after(async () => {
    await xapi.disconnect();
    await xapi._undiciDispatcher?.close?.();
  });
  await xapi.objectsFetched;
  const seen: string[] = [];
  xapi.objects.on('add', (objs: Record<string, any>) => { for (const o of Object.values(objs)) seen.push(`add:${o.$ref}`); });
  xapi.objects.on('update', (objs: Record<string, any>) => { for (const o of Object.values(objs)) seen.push(`mod:${o.$ref}:${o.name_label}`); });
  xapi.objects.on('remove', (objs: Record<string, any>) => { for (const [id, o] of Object.entries(objs)) seen.push(`del:${o?.$ref ?? id}`); });

  const before = Object.values(xapi.objects.all).filter((o: any) => o.$type === 'VM').length;
  assert.ok(before >= 1, 'the initial fetch brought the VMs in');

  const ref = await xapi.call('VM.create', vmRecord('watched by xo'));
  await waitFor('the new VM', () => xapi.getObjectByRef(ref, undefined) !== undefined);
  await xapi.call('VM.set_name_label', ref, 'renamed for xo');
  await waitFor('the rename', () => xapi.getObjectByRef(ref, undefined)?.name_label === 'renamed for xo');
  await xapi.call('VM.destroy', ref);
  await waitFor('the removal', () => xapi.getObjectByRef(ref, undefined) === undefined);

  assert.ok(seen.includes(`add:${ref}`), seen.join(' '));
  assert.ok(seen.includes(`mod:${ref}:renamed for xo`), seen.join(' '));
  assert.ok(seen.some((s) => s.startsWith('del:')), seen.join(' '));
  assert.equal(xapi.watchEventsError, undefined);
});
