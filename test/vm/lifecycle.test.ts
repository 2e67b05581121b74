// Domains that change by themselves and daemons that die: a guest crash under each
// actions_after_crash, guests that halt or reboot themselves, the crash guard, and
// reconciliation after the daemon is SIGKILLed (mid-start, or with guests running) or
// finds the hypervisor and the database disagreeing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ObjectStore } from '../../src/db/store.js';
import { startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { NULL, SIM_ARGS, fileSr, pvRecord, reconnect, vmDaemon, waitFor, waitPower, type VmDaemon } from './helpers.js';

describe('guests that stop by themselves', () => {
  let v: VmDaemon;
  let srDir: string;
  before(async () => {
    v = await vmDaemon();
    ({ dir: srDir } = await fileSr(v.api, v.host, v.pool));
  });
  after(async () => {
    await v?.d.cleanup();
    if (srDir) rmSync(srDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });
  const call = (m: string, ...a: unknown[]) => v.api.call(m, ...a);

  async function running(name: string, extra: Record<string, unknown> = {}) {
    const vm = await call('VM.create', pvRecord(name, extra));
    await call('VM.start', vm, false, false);
    return { vm, domid: (await call('VM.get_domid', vm)) as number };
  }

  for (const action of ['destroy', 'restart', 'preserve', 'coredump_and_destroy', 'coredump_and_restart', 'rename_restart']) {
    test(`a crash with actions_after_crash=${action}`, async () => {
      // rename_restart is refused at start, so it is set on the running VM (xapi then treats it as restart).
      const { vm, domid } = await running(`crash-${action}`, { actions_after_crash: action === 'rename_restart' ? 'restart' : action });
      if (action === 'rename_restart') await call('VM.set_actions_after_crash', vm, 'rename_restart');
      const dumpsBefore = (await call('crashdump.get_all')).length;
      await call('VM.send_sysrq', vm, 'c');
      const expected = action === 'preserve' ? 'Paused' : action.endsWith('destroy') ? 'Halted' : 'Running';
      const r = await waitPower(v.api, vm, expected, expected === 'Running' ? domid : undefined);
      if (expected === 'Running') assert.notEqual(r.domid, domid, 'restarted in a new domain');
      if (expected === 'Halted') assert.equal(r.domid, -1);
      if (expected === 'Paused') {
        assert.equal(r.domid, domid, 'the crashed domain is kept');
        assert.deepEqual(await v.api.failure('VM.unpause', vm), ['VM_CRASHED', vm]);
        await call('VM.hard_shutdown', vm);
        assert.equal((await call('VM.get_power_state', vm)), 'Halted');
      }
      const dumps = await call('crashdump.get_all_records');
      const mine = Object.values(dumps).filter((d: any) => d.VM === vm);
      if (action.startsWith('coredump')) {
        assert.equal(mine.length, 1, 'one crash dump');
        const vdi = await call('VDI.get_record', (mine[0] as any).VDI);
        assert.equal(vdi.name_label, 'Crash dump');
        assert.equal(vdi.type, 'crashdump');
      } else {
        assert.equal(mine.length, 0);
        assert.equal((await call('crashdump.get_all')).length, dumpsBefore);
      }
      if ((await call('VM.get_power_state', vm)) !== 'Halted') await call('VM.hard_shutdown', vm);
      await call('VM.destroy', vm);
    });
  }

  test('a guest that powers off: actions_after_shutdown destroy halts it, restart boots it again', async () => {
    let { vm } = await running('self-halt');
    await call('VM.send_sysrq', vm, 'o');
    await waitPower(v.api, vm, 'Halted');
    await call('VM.destroy', vm);
    let domid: number;
    ({ vm, domid } = await running('self-halt-restart', { actions_after_shutdown: 'restart' }));
    await call('VM.send_sysrq', vm, 'o');
    await waitPower(v.api, vm, 'Running', domid);
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });

  test('a guest that reboots: actions_after_reboot restart boots a new domain, destroy halts it', async () => {
    let { vm, domid } = await running('self-reboot');
    const started = (await call('VM_metrics.get_record', await call('VM.get_metrics', vm))).start_time;
    await call('VM.send_sysrq', vm, 'b');
    const r = await waitPower(v.api, vm, 'Running', domid);
    assert.notEqual(r.domid, domid);
    assert.ok((await call('VM_metrics.get_record', r.metrics)).start_time >= started);
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
    ({ vm } = await running('self-reboot-destroy', { actions_after_reboot: 'destroy' }));
    await call('VM.send_sysrq', vm, 'b');
    await waitPower(v.api, vm, 'Halted');
    await call('VM.destroy', vm);
  });
});

test('a crash soon after start does not restart the VM (the crash guard)', async () => {
  // SIM_ARGS turn the guard off; the later --crash-guard wins.
  const v = await vmDaemon({ args: ['--crash-guard', '3600'] });
  try {
    const vm = await v.api.call('VM.create', pvRecord('guarded', { actions_after_crash: 'restart' }));
    await v.api.call('VM.start', vm, false, false);
    await v.api.call('VM.send_sysrq', vm, 'c');
    const r = await waitPower(v.api, vm, 'Halted');
    assert.equal(r.domid, -1);
  } finally {
    await v.d.cleanup();
  }
});

describe('reconciliation at daemon start', () => {
  test('SIGKILLed in the middle of a start: the half-built domain goes, the VM is Halted and can start', async () => {
    const stateDir = tempDir('xapid-vm-kill-');
    let d: TestDaemon | undefined;
    try {
      d = await startDaemon({ stateDir, args: SIM_ARGS });
      let { api } = await reconnect(d);
      const vm = await api.call('VM.create', pvRecord('killed-mid-start', { other_config: { sim_build_ms: '60000' } }));
      const task = await api.call('Async.VM.start', vm, false, false);
      await waitFor(async () => Object.values(await api.call('VM.get_current_operations', vm)).includes('start'), 'start in progress');
      // The domain exists, being built (the simulator writes its table just after creating it).
      await waitFor(async () => {
        try {
          return JSON.parse(readFileSync(path.join(stateDir, 'simulator.json'), 'utf8')).domains.length === 1;
        } catch {
          return false;
        }
      }, 'the simulator to record the domain being built');
      assert.equal(await d.stop('SIGKILL'), null);

      d = await startDaemon({ stateDir, args: SIM_ARGS });
      ({ api } = await reconnect(d));
      const r = await api.call('VM.get_record', vm);
      assert.equal(r.power_state, 'Halted');
      assert.deepEqual(r.current_operations, {});
      assert.equal(r.domid, -1);
      assert.equal(r.scheduled_to_be_resident_on, NULL);
      assert.ok(r.allowed_operations.includes('start'));
      const t = await api.call('task.get_record', task);
      assert.equal(t.status, 'failure');
      const after = JSON.parse(readFileSync(path.join(stateDir, 'simulator.json'), 'utf8'));
      assert.equal(after.domains.length, 0, 'the half-built domain was destroyed');
      await api.call('VM.remove_from_other_config', vm, 'sim_build_ms');
      await api.call('VM.start', vm, false, false);
      assert.equal(await api.call('VM.get_power_state', vm), 'Running');
      await api.call('VM.hard_shutdown', vm);
      await d.stop();
    } finally {
      await d?.stop();
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
  });

  test('SIGKILLed with guests running: the running and paused domains are adopted as they are', async () => {
    const stateDir = tempDir('xapid-vm-adopt-');
    let d: TestDaemon | undefined;
    try {
      d = await startDaemon({ stateDir, args: SIM_ARGS });
      let { api } = await reconnect(d);
      const a = await api.call('VM.create', pvRecord('adopt-running'));
      const b = await api.call('VM.create', pvRecord('adopt-paused'));
      await api.call('VM.start', a, false, false);
      await api.call('VM.start', b, true, false);
      const [da, db] = [await api.call('VM.get_domid', a), await api.call('VM.get_domid', b)];
      // The simulator writes its table off the event loop: wait until it holds both domains as they are.
      await waitFor(async () => {
        try {
          const states = JSON.parse(readFileSync(path.join(stateDir, 'simulator.json'), 'utf8')).domains.map((x: { domid: number; state: string }) => `${x.domid}:${x.state}`).sort();
          return JSON.stringify(states) === JSON.stringify([`${da}:running`, `${db}:paused`].sort());
        } catch {
          return false;
        }
      }, 'the simulator to record both domains');
      await d.stop('SIGKILL');
      d = await startDaemon({ stateDir, args: SIM_ARGS });
      ({ api } = await reconnect(d));
      const ra = await api.call('VM.get_record', a);
      const rb = await api.call('VM.get_record', b);
      assert.deepEqual([ra.power_state, ra.domid], ['Running', da]);
      assert.deepEqual([rb.power_state, rb.domid], ['Paused', db]);
      await api.call('VM.unpause', b);
      for (const vm of [a, b]) await api.call('VM.hard_shutdown', vm);
      await d.stop();
    } finally {
      await d?.stop();
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
  });

  test('the database and the hypervisor disagree: a running domain is adopted, a vanished one halts its VM', async () => {
    const stateDir = tempDir('xapid-vm-disagree-');
    let d: TestDaemon | undefined;
    try {
      d = await startDaemon({ stateDir, args: SIM_ARGS });
      let { api } = await reconnect(d);
      const kept = await api.call('VM.create', pvRecord('db-thinks-halted'));
      const lost = await api.call('VM.create', pvRecord('domain-vanished'));
      await api.call('VM.start', kept, false, false);
      await api.call('VM.start', lost, false, false);
      const keptDomid = await api.call('VM.get_domid', kept);
      const lostUuid = await api.call('VM.get_uuid', lost);
      await d.stop();
      // While no daemon runs: the database forgets one guest, the hypervisor loses the other.
      const store = new ObjectStore(path.join(stateDir, 'xapid.db'));
      store.update('VM', kept, { power_state: 'Halted', domid: -1, resident_on: NULL });
      store.close();
      const simFile = path.join(stateDir, 'simulator.json');
      const sim = JSON.parse(readFileSync(simFile, 'utf8'));
      sim.domains = sim.domains.filter((x: { uuid: string }) => x.uuid !== lostUuid);
      writeFileSync(simFile, JSON.stringify(sim));

      d = await startDaemon({ stateDir, args: SIM_ARGS });
      ({ api } = await reconnect(d));
      const k = await api.call('VM.get_record', kept);
      assert.deepEqual([k.power_state, k.domid], ['Running', keptDomid]);
      assert.equal(k.resident_on, (await api.call('host.get_all'))[0]);
      const l = await api.call('VM.get_record', lost);
      assert.deepEqual([l.power_state, l.domid, l.resident_on], ['Halted', -1, NULL]);
      assert.deepEqual(l.consoles, []);
      await api.call('VM.hard_shutdown', kept);
      await d.stop();
    } finally {
      await d?.stop();
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
  });
});
