// Parameters that may be left out: the ones xapi added to an API 1.1 message after it
// first appeared (host.disable's auto_enable, VDI.introduce's tampa parameters…) and the
// rio/miami ones xapi gives a default (login_with_password's version). Their releases and
// defaults come from the datamodel facts; a call may leave out such trailing parameters,
// the server fills in the default, and every other parameter stays required.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classes, NULL_REF } from '../../src/datamodel/model.js';
import { jsonCall, login, ROOT_PASSWORD, startDaemon, type TestDaemon } from '../helpers/daemon.js';

const SHARED = path.join(fileURLToPath(new URL('../../../', import.meta.url)), '..', 'shared');
interface RefParam { name: string; type: string; release?: string; default?: unknown }
const ref = JSON.parse(readFileSync(path.join(SHARED, 'xenapi', 'datamodel.json'), 'utf8')) as {
  classes: Array<{ name: string; messages: Array<{ name: string; release: string; params: RefParam[] }> }>;
};

/** Every parameter of an API 1.1 message that the facts give a release or a default. */
const facts = ref.classes.flatMap((c) => c.messages
  .filter((m) => m.release === 'rio' || m.release === 'miami')
  .flatMap((m) => m.params.filter((p) => p.release !== undefined || 'default' in p).map((p) => ({ cls: c.name, msg: m.name, p }))));

test('the datamodel carries the release and default of each of the 26 parameters', () => {
  assert.equal(facts.length, 26);
  for (const { cls, msg, p } of facts) {
    const m = classes.get(cls)!.messages.get(msg)!;
    const mine = m.params.find((x) => x.name === p.name)!;
    assert.equal(mine.release, p.release, `${cls}.${msg} ${p.name} release`);
    assert.ok(mine.hasDefault, `${cls}.${msg} ${p.name} has a default`);
    const want = mine.type.kind === 'ref' && !p.default ? NULL_REF : p.default;
    assert.deepEqual(mine.default, want, `${cls}.${msg} ${p.name} default`);
  }
});

let d: TestDaemon;
let session: string;
before(async () => {
  d = await startDaemon({ args: ['--driver', 'sim', '--sim-delay-scale', '0', '--network-mode', 'none'] });
  session = await login(d.url);
});
after(async () => d?.cleanup());

const call = (method: string, params: unknown[]) => jsonCall(d.url, method, params);
const code = (r: any): string | undefined => r.error?.message;

test('each message may be called without its trailing defaulted parameters, and not with fewer', async () => {
  const messages = new Set(facts.map((f) => `${f.cls}.${f.msg}`));
  for (const name of messages) {
    const [cls, msg] = name.split('.') as [string, string];
    const m = classes.get(cls)!.messages.get(msg)!;
    const required = m.args.slice(0, m.requiredArgs);
    const args = required.map((p) => (p.type.kind === 'ref' ? NULL_REF : p.type.kind === 'map' ? {} : p.type.kind === 'set' ? [] : p.type.kind === 'bool' ? false : p.type.kind === 'int' ? 0 : ''));
    const lead = m.takesSession ? [session] : [];
    const short = await call(name, [...lead, ...args]);
    assert.notEqual(code(short), 'MESSAGE_PARAMETER_COUNT_MISMATCH', `${name} without its defaulted parameters: ${JSON.stringify(short.error)}`);
    if (args.length > 0) {
      const fewer = await call(name, [...lead, ...args.slice(0, -1)]);
      assert.equal(code(fewer), 'MESSAGE_PARAMETER_COUNT_MISMATCH', `${name} with a required parameter missing`);
      assert.equal(fewer.error.data[1], String(m.requiredArgs), `${name}: the count it expects`);
    }
  }
});

test('calls as API 1.1 clients send them: login_with_password(uname, pwd) logs in, host.disable(session, host) is no count mismatch', async () => {
  const s = await call('session.login_with_password', ['root', ROOT_PASSWORD]);
  assert.ok(s.result, JSON.stringify(s));
  const [host] = (await call('host.get_all', [session])).result as string[];
  const r = await call('host.disable', [session, host]);
  assert.notEqual(code(r), 'MESSAGE_PARAMETER_COUNT_MISMATCH', JSON.stringify(r));
  // A parameter without a default, even after defaulted ones, is still required.
  assert.equal(code(await call('host.disable', [session])), 'MESSAGE_PARAMETER_COUNT_MISMATCH');
});
