// The power-state machine over the API on the simulator: every transition of the
// manual's figure 1.1 with the record changes xapi makes, every refused transition with
// its exact error, templates, the control domain, start-time checks, conflicting calls,
// live changes and guest metrics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { GiB, MiB, NULL, fileSr, hvmRecord, pvRecord, vmDaemon, waitFor, waitTask, type VmDaemon } from './helpers.js';

let v: VmDaemon;
let srDir: string;
let sr: string;

before(async () => {
  v = await vmDaemon();
  ({ sr, dir: srDir } = await fileSr(v.api, v.host, v.pool));
});
after(async () => {
  await v?.d.cleanup();
  if (srDir) rmSync(srDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

const call = (m: string, ...a: unknown[]) => v.api.call(m, ...a);
const failure = (m: string, ...a: unknown[]) => v.api.failure(m, ...a);
const record = (vm: string) => call('VM.get_record', vm);

async function newVm(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  return call('VM.create', pvRecord(name, extra));
}

describe('transitions', () => {
  test('start sets what xapi sets: domid, resident_on, metrics, console, boot record; halt undoes it', async () => {
    const vm = await newVm('start-fields');
    const before = await record(vm);
    assert.equal(before.power_state, 'Halted');
    assert.equal(before.domid, -1);
    assert.deepEqual([...before.allowed_operations].sort(), ['clone', 'copy', 'destroy', 'make_into_template', 'start', 'start_on']);
    await call('VM.start', vm, false, false);
    const r = await record(vm);
    assert.equal(r.power_state, 'Running');
    assert.ok(r.domid > 0, `domid ${r.domid}`);
    assert.equal(r.resident_on, v.host);
    assert.equal(r.scheduled_to_be_resident_on, NULL);
    assert.equal(r.domarch, 'x64');
    assert.deepEqual(r.current_operations, {});
    assert.ok(r.allowed_operations.includes('pause') && r.allowed_operations.includes('hard_shutdown') && !r.allowed_operations.includes('start'));
    assert.match(r.last_booted_record, /^<value><struct>/);
    assert.equal(r.consoles.length, 1);
    const con = await call('console.get_record', r.consoles[0]);
    assert.equal(con.protocol, 'rfb');
    assert.match(con.location, new RegExp(`/console\\?ref=${vm}$`));
    const m = await call('VM_metrics.get_record', r.metrics);
    assert.equal(m.memory_actual, 256 * MiB);
    assert.equal(m.VCPUs_number, 1);
    assert.notEqual(m.start_time, '19700101T00:00:00Z');
    assert.equal((await call('host.get_resident_VMs', v.host)).includes(vm), true);
    // the boot record is the record as it was at start
    const boot = await call('VM.get_boot_record', vm);
    assert.equal(boot.power_state, 'Halted');
    assert.equal(boot.name_label, 'start-fields');

    await call('VM.hard_shutdown', vm);
    const h = await record(vm);
    assert.equal(h.power_state, 'Halted');
    assert.equal(h.domid, -1);
    assert.equal(h.resident_on, NULL);
    assert.deepEqual(h.consoles, []);
    assert.equal((await call('host.get_resident_VMs', v.host)).includes(vm), false);
    await call('VM.destroy', vm);
  });

  test('every transition of figure 1.1', async () => {
    const vm = await newVm('fig-1.1');
    const state = async () => (await record(vm)).power_state;
    const steps: Array<[string, unknown[], string]> = [
      ['VM.start', [false, false], 'Running'],
      ['VM.pause', [], 'Paused'],
      ['VM.unpause', [], 'Running'],
      ['VM.suspend', [], 'Suspended'],
      ['VM.resume', [false, false], 'Running'],
      ['VM.clean_reboot', [], 'Running'],
      ['VM.hard_reboot', [], 'Running'],
      ['VM.clean_shutdown', [], 'Halted'],
      ['VM.start', [true, false], 'Paused'],
      ['VM.hard_reboot', [], 'Running'],
      ['VM.pause', [], 'Paused'],
      ['VM.hard_shutdown', [], 'Halted'],
      ['VM.start_on', [v.host, false, false], 'Running'],
      ['VM.suspend', [], 'Suspended'],
      ['VM.resume_on', [v.host, true, false], 'Paused'],
      ['VM.unpause', [], 'Running'],
      ['VM.suspend', [], 'Suspended'],
      ['VM.hard_shutdown', [], 'Halted'],
      ['VM.start', [false, false], 'Running'],
      ['VM.suspend', [], 'Suspended'],
      ['VM.hard_reboot', [], 'Running'],
      ['VM.hard_shutdown', [], 'Halted'],
      ['VM.power_state_reset', [], 'Halted'],
    ];
    let domid = -1;
    for (const [m, args, expected] of steps) {
      await call(m, vm, ...args);
      const r = await record(vm);
      assert.equal(r.power_state, expected, `${m} leaves the VM ${expected}`);
      if (expected === 'Halted' || expected === 'Suspended') assert.equal(r.domid, -1, `${m}: no domain`);
      else {
        assert.ok(r.domid > 0, `${m}: a domain`);
        if (m.includes('reboot') || m.includes('start') || m.includes('resume')) assert.notEqual(r.domid, domid, `${m}: a new domain`);
        domid = r.domid;
      }
      assert.deepEqual(r.current_operations, {}, `${m}: no operation left behind`);
    }
    assert.equal(await state(), 'Halted');
    // Suspend images were VDIs, and each went away after resume or hard_shutdown.
    const suspendVdis = Object.values(await call('VDI.get_all_records')).filter((x: any) => x.type === 'suspend');
    assert.deepEqual(suspendVdis, []);
    await call('VM.destroy', vm);
  });

  test('suspend keeps the image in a suspend VDI; resume continues the same guest', async () => {
    const vm = await newVm('suspend-image');
    await call('VM.start', vm, false, false);
    const gm = await waitFor(async () => ((await record(vm)).guest_metrics !== NULL ? (await record(vm)).guest_metrics : undefined), 'guest metrics');
    await call('VM.suspend', vm);
    const r = await record(vm);
    assert.notEqual(r.suspend_VDI, NULL);
    const vdi = await call('VDI.get_record', r.suspend_VDI);
    assert.equal(vdi.type, 'suspend');
    assert.equal(vdi.SR, sr);
    assert.ok(vdi.virtual_size >= 256 * MiB);
    assert.equal(r.resident_on, NULL);
    await call('VM.resume', vm, false, false);
    const after = await record(vm);
    assert.equal(after.suspend_VDI, NULL);
    assert.equal(after.guest_metrics, gm, 'the guest kept running: its metrics record stays');
    assert.equal((await call('VDI.get_all')).includes(r.suspend_VDI), false, 'the suspend VDI is gone after resume');
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });

  test('suspend without any SR for the image: VM_NO_SUSPEND_SR', async () => {
    const vm = await newVm('no-suspend-sr');
    await call('VM.start', vm, false, false);
    await call('pool.set_suspend_image_SR', v.pool, NULL);
    await call('pool.set_default_SR', v.pool, NULL);
    try {
      assert.deepEqual(await failure('VM.suspend', vm), ['VM_NO_SUSPEND_SR', vm]);
      assert.equal((await record(vm)).power_state, 'Running');
    } finally {
      await call('pool.set_suspend_image_SR', v.pool, sr);
      await call('pool.set_default_SR', v.pool, sr);
    }
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });
});

describe('refused transitions', () => {
  // The expected states as xapi lists them, lower case, for each operation.
  const EXPECTED: Record<string, [string, unknown[]]> = {
    start: ['halted', [false, false]],
    start_on: ['halted', ['HOST', false, false]],
    pause: ['running', []],
    unpause: ['paused', []],
    suspend: ['running', []],
    resume: ['suspended', [false, false]],
    resume_on: ['suspended', ['HOST', false, false]],
    clean_shutdown: ['running', []],
    clean_reboot: ['running', []],
    hard_shutdown: ['paused, suspended, running', []],
    hard_reboot: ['paused, suspended, running', []],
    send_sysrq: ['running', ['s']],
    send_trigger: ['running', ['nmi']],
    set_VCPUs_number_live: ['running', [1]],
    destroy: ['halted', []],
  };
  const ALLOWED: Record<string, string[]> = {
    Halted: ['start', 'start_on', 'destroy'],
    Running: ['pause', 'suspend', 'clean_shutdown', 'clean_reboot', 'hard_shutdown', 'hard_reboot', 'send_sysrq', 'send_trigger', 'set_VCPUs_number_live'],
    Paused: ['unpause', 'hard_shutdown', 'hard_reboot'],
    Suspended: ['resume', 'resume_on', 'hard_shutdown', 'hard_reboot'],
  };

  for (const state of ['Halted', 'Running', 'Paused', 'Suspended']) {
    test(`in ${state}: every other operation answers VM_BAD_POWER_STATE [vm, expected, actual]`, async () => {
      const vm = await newVm(`refused-${state}`);
      if (state !== 'Halted') await call('VM.start', vm, state === 'Paused', false);
      if (state === 'Suspended') await call('VM.suspend', vm);
      assert.equal((await record(vm)).power_state, state);
      const before = await record(vm);
      for (const [op, [expected, args]] of Object.entries(EXPECTED)) {
        if (ALLOWED[state]!.includes(op)) continue;
        const a = args.map((x) => (x === 'HOST' ? v.host : x));
        assert.deepEqual(await failure(`VM.${op}`, vm, ...a), ['VM_BAD_POWER_STATE', vm, expected, state.toLowerCase()], `${op} in ${state}`);
      }
      const after = await record(vm);
      assert.deepEqual(after, before, 'refused calls change nothing');
      const allowed = new Set(after.allowed_operations);
      for (const op of ['start', 'pause', 'unpause', 'suspend', 'resume', 'clean_shutdown', 'hard_shutdown', 'hard_reboot']) {
        assert.equal(allowed.has(op), ALLOWED[state]!.includes(op), `allowed_operations in ${state}: ${op}`);
      }
      if (state !== 'Halted') await call('VM.hard_shutdown', vm);
      await call('VM.destroy', vm);
    });
  }

  test('templates: VM_IS_TEMPLATE for anything but clone, copy, provision (and destroy of a non-default one)', async () => {
    const templates = Object.entries(await call('VM.get_all_records')).filter(([, r]: [string, any]) => r.is_a_template && r.other_config.default_template === 'true');
    assert.ok(templates.length >= 2, 'default templates exist');
    const [t] = templates[0]!;
    assert.deepEqual(await failure('VM.start', t, false, false), ['VM_IS_TEMPLATE', t]);
    assert.deepEqual(await failure('VM.destroy', t), ['VM_IS_TEMPLATE', t]);
    assert.deepEqual(await failure('VM.assert_operation_valid', t, 'start'), ['VM_IS_TEMPLATE', t]);
    await call('VM.assert_operation_valid', t, 'clone');
    // a template that is not a default one may be destroyed
    const mine = await newVm('my-template');
    await call('VM.set_is_a_template', mine, true);
    assert.deepEqual(await failure('VM.start', mine, false, false), ['VM_IS_TEMPLATE', mine]);
    assert.deepEqual([...(await record(mine)).allowed_operations].sort(), ['clone', 'copy', 'destroy', 'provision']);
    await call('VM.destroy', mine);
  });

  test('provision on a VM that is not a template: PROVISION_ONLY_ALLOWED_ON_TEMPLATE', async () => {
    const vm = await newVm('not-a-template');
    assert.deepEqual(await failure('VM.provision', vm), ['PROVISION_ONLY_ALLOWED_ON_TEMPLATE']);
    await call('VM.destroy', vm);
  });

  test('the control domain: its power state first, then OPERATION_NOT_ALLOWED', async () => {
    const dom0 = Object.entries(await call('VM.get_all_records')).find(([, r]: [string, any]) => r.is_control_domain)![0];
    assert.deepEqual(await failure('VM.start', dom0, false, false), ['VM_BAD_POWER_STATE', dom0, 'halted', 'running']);
    assert.deepEqual(await failure('VM.hard_shutdown', dom0), ['OPERATION_NOT_ALLOWED', 'Operations on domain 0 are not allowed']);
    assert.deepEqual(await failure('VM.power_state_reset', dom0), ['CANNOT_RESET_CONTROL_DOMAIN', dom0]);
    assert.deepEqual((await record(dom0)).allowed_operations, []);
  });

  test('power_state_reset of a VM whose domain runs: DOMAIN_EXISTS [vm, domid]', async () => {
    const vm = await newVm('reset-live');
    await call('VM.start', vm, false, false);
    const domid = (await record(vm)).domid;
    assert.deepEqual(await failure('VM.power_state_reset', vm), ['DOMAIN_EXISTS', vm, String(domid)]);
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });

  test('start and hard_shutdown racing: the second gets OTHER_OPERATION_IN_PROGRESS [VM, vm, start, task]', async () => {
    const vm = await newVm('race', { other_config: { sim_build_ms: '1500' } });
    const task = await call('Async.VM.start', vm, false, false);
    const cur = await waitFor(async () => {
      const ops = (await record(vm)).current_operations as Record<string, string>;
      return Object.keys(ops).length ? ops : undefined;
    }, 'start in progress');
    assert.deepEqual(Object.values(cur), ['start']);
    assert.deepEqual(Object.keys(cur), [task]);
    assert.deepEqual(await failure('VM.hard_shutdown', vm), ['OTHER_OPERATION_IN_PROGRESS', 'VM', vm, 'start', task]);
    assert.deepEqual(await failure('VM.start', vm, false, false), ['OTHER_OPERATION_IN_PROGRESS', 'VM', vm, 'start', task]);
    assert.deepEqual((await record(vm)).allowed_operations, [], 'nothing is allowed while start runs');
    const t = await waitTask(v.api, task);
    assert.equal(t.status, 'success', JSON.stringify(t.error_info));
    assert.equal((await record(vm)).power_state, 'Running');
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });

  test('many concurrent starts of one VM: exactly one wins, the others are refused precisely', async () => {
    const vm = await newVm('race-many', { other_config: { sim_build_ms: '300' } });
    const results = await Promise.all(Array.from({ length: 6 }, () => v.api.call('VM.start', vm, false, false).then(() => 'ok', (e: { description: string[] }) => e.description)));
    assert.equal(results.filter((r) => r === 'ok').length, 1, JSON.stringify(results));
    for (const r of results) {
      if (r === 'ok') continue;
      assert.ok(r[0] === 'OTHER_OPERATION_IN_PROGRESS' || (r[0] === 'VM_BAD_POWER_STATE' && r[2] === 'halted'), JSON.stringify(r));
    }
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });
});

describe('start-time checks', () => {
  test('memory, VCPUs, crash action, boot policy and bootloader are checked at start', async () => {
    const cases: Array<[Record<string, unknown>, (vm: string) => string[]]> = [
      [{ memory_static_min: 512 * MiB }, () => ['MEMORY_CONSTRAINT_VIOLATION', 'memory_static_min <= memory_static_max']],
      [{ memory_dynamic_min: 300 * MiB, memory_dynamic_max: 200 * MiB }, () => ['MEMORY_CONSTRAINT_VIOLATION', 'memory_dynamic_min <= memory_dynamic_max']],
      [{ VCPUs_max: 0, VCPUs_at_startup: 0 }, () => ['INVALID_VALUE', 'VCPUs_max', '0']],
      [{ VCPUs_at_startup: 0 }, () => ['INVALID_VALUE', 'VCPUs-at-startup', '0']],
      [{ VCPUs_at_startup: 2 }, () => ['VALUE_NOT_SUPPORTED', 'VCPUs-at-startup', '2', 'value greater than VCPUs-max']],
      [{ actions_after_crash: 'rename_restart' }, () => ['VALUE_NOT_SUPPORTED', 'VM.actions_after_crash', 'rename_restart', 'option would leak a domain; VMs and not domains are managed by this API']],
      [{ PV_bootloader: 'eliloader' }, (vm) => ['UNKNOWN_BOOTLOADER', vm, 'eliloader']],
      [{ PV_bootloader: 'pygrub', PV_kernel: '' }, (vm) => ['BOOTLOADER_FAILED', vm, 'pygrub: no bootable disk was given to the bootloader']],
      [{ memory_static_max: 2 ** 50, memory_dynamic_max: 2 ** 50 }, () => ['HOST_NOT_ENOUGH_FREE_MEMORY']],
      [{ VCPUs_max: 4096, VCPUs_at_startup: 1 }, () => ['HOST_NOT_ENOUGH_PCPUS', '4096']],
      [{ other_config: { sim_refuse_start: 'xc_dom_build failed: simulated' } }, () => ['DOMAIN_BUILDER_ERROR', 'create start-refused', '', 'xc_dom_build failed: simulated']],
    ];
    for (const [i, [extra, expected]] of cases.entries()) {
      const vm = await newVm(i === cases.length - 1 ? 'start-refused' : `check-${i}`, extra);
      const err = await failure('VM.start', vm, false, false);
      const want = expected(vm);
      if (want[0] === 'DOMAIN_BUILDER_ERROR') {
        assert.equal(err[0], 'DOMAIN_BUILDER_ERROR');
        assert.match(err[1]!, /^create start-refused-/);
        assert.equal(err[3], want[3]);
      } else {
        assert.deepEqual(err.slice(0, want.length), want, `case ${i}: ${JSON.stringify(extra)}`);
      }
      const r = await record(vm);
      assert.equal(r.power_state, 'Halted', `case ${i} leaves the VM halted`);
      assert.equal(r.scheduled_to_be_resident_on, NULL);
      assert.ok(r.allowed_operations.includes('start'));
      await call('VM.destroy', vm);
    }
  });

  test('HVM: coredump crash actions are refused; only the BIOS order policy boots', async () => {
    let vm = await call('VM.create', hvmRecord('hvm-coredump', { actions_after_crash: 'coredump_and_restart' }));
    assert.deepEqual(await failure('VM.start', vm, false, false), ['VALUE_NOT_SUPPORTED', 'VM.actions_after_crash', 'coredump_and_restart', 'cannot invoke a coredump of an HVM domain']);
    await call('VM.destroy', vm);
    vm = await call('VM.create', hvmRecord('hvm-policy', { HVM_boot_policy: 'netboot' }));
    assert.deepEqual((await failure('VM.start', vm, false, false)).slice(0, 3), ['VALUE_NOT_SUPPORTED', 'VM.HVM_boot_policy', 'netboot']);
    await call('VM.set_HVM_boot_policy', vm, 'BIOS order');
    await call('VM.start', vm, false, false);
    assert.equal((await record(vm)).domarch, 'hvm');
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
  });

  test('assert_can_boot_here and get_possible_hosts check free memory and CPUs of this host', async () => {
    const ok = await newVm('fits');
    await call('VM.assert_can_boot_here', ok, v.host);
    assert.deepEqual(await call('VM.get_possible_hosts', ok), [v.host]);
    const big = await newVm('too-big', { memory_static_max: 2 ** 50, memory_dynamic_max: 2 ** 50 });
    const err = await failure('VM.assert_can_boot_here', big, v.host);
    assert.equal(err[0], 'HOST_NOT_ENOUGH_FREE_MEMORY');
    assert.ok(Number(err[1]) > 2 ** 50 && Number(err[2]) < Number(err[1]), JSON.stringify(err));
    assert.deepEqual(await call('VM.get_possible_hosts', big), []);
    for (const vm of [ok, big]) await call('VM.destroy', vm);
  });
});

describe('live changes and questions', () => {
  test('VCPUs, VCPU parameters, memory target, sysrq, triggers, shadow memory', async () => {
    const vm = await newVm('live', { VCPUs_max: 2, VCPUs_at_startup: 1 });
    await call('VM.start', vm, false, false);
    await call('VM.set_VCPUs_number_live', vm, 2);
    assert.equal((await record(vm)).VCPUs_at_startup, 2);
    assert.equal((await call('VM_metrics.get_record', (await record(vm)).metrics)).VCPUs_number, 2);
    assert.deepEqual(await failure('VM.set_VCPUs_number_live', vm, 3), ['INVALID_VALUE', 'nvcpu', '3']);
    await call('VM.add_to_VCPUs_params_live', vm, 'weight', '512');
    assert.equal((await record(vm)).VCPUs_params.weight, '512');
    assert.deepEqual(await failure('VM.add_to_VCPUs_params_live', vm, 'cap', 'lots'), ['INVALID_VALUE', 'cap', 'lots']);
    await call('VM.set_memory_target_live', vm, 200 * MiB);
    assert.equal((await record(vm)).memory_target, 200 * MiB);
    assert.equal((await call('VM_metrics.get_record', (await record(vm)).metrics)).memory_actual, 200 * MiB);
    assert.equal((await failure('VM.set_memory_target_live', vm, 1 * GiB))[0], 'MEMORY_CONSTRAINT_VIOLATION');
    await call('VM.send_sysrq', vm, 's');
    assert.deepEqual(await failure('VM.send_sysrq', vm, 'sync'), ['INVALID_VALUE', 'key', 'sync']);
    await call('VM.send_trigger', vm, 'nmi');
    assert.deepEqual(await failure('VM.send_trigger', vm, 'power'), ['OPERATION_NOT_ALLOWED', 'trigger power applies to HVM domains only']);
    assert.deepEqual(await failure('VM.send_trigger', vm, 'explode'), ['INVALID_VALUE', 'trigger', 'explode']);
    assert.deepEqual(await failure('VM.set_shadow_multiplier_live', vm, 2), ['VM_HVM_REQUIRED', vm]);
    assert.deepEqual((await failure('VM.pool_migrate', vm, v.host, {}))[0], 'OPERATION_NOT_ALLOWED');
    assert.equal((await record(vm)).power_state, 'Running');
    await call('VM.hard_shutdown', vm);
    assert.deepEqual(await failure('VM.pool_migrate', vm, v.host, {}), ['VM_BAD_POWER_STATE', vm, 'running', 'halted']);
    await call('VM.destroy', vm);
  });

  test('maximise_memory: the largest memory that fits, overhead included', async () => {
    const vm = await newVm('maximise');
    const m = await call('VM.maximise_memory', vm, 1 * GiB, false);
    assert.ok(m < 1 * GiB && m > 1 * GiB - 64 * MiB, String(m));
    const approx = await call('VM.maximise_memory', vm, 1 * GiB, true);
    assert.equal(approx % MiB, 0);
    assert.ok(approx <= m);
    await call('VM.destroy', vm);
  });

  test('clean shutdown of a guest that ignores it, or hangs: VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT, VM_SHUTDOWN_TIMEOUT', async () => {
    const deaf = await newVm('deaf', { other_config: { sim_shutdown: 'ignore' } });
    await call('VM.start', deaf, false, false);
    assert.deepEqual(await failure('VM.clean_shutdown', deaf), ['VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', deaf]);
    assert.equal((await record(deaf)).power_state, 'Running');
    const stuck = await newVm('stuck', { other_config: { sim_shutdown: 'hang' } });
    await call('VM.start', stuck, false, false);
    assert.deepEqual(await failure('VM.clean_shutdown', stuck), ['VM_SHUTDOWN_TIMEOUT', stuck, '2']);
    assert.deepEqual(await failure('VM.clean_reboot', stuck), ['VM_SHUTDOWN_TIMEOUT', stuck, '2']);
    for (const vm of [deaf, stuck]) {
      await call('VM.hard_shutdown', vm);
      assert.equal((await record(vm)).power_state, 'Halted');
      await call('VM.destroy', vm);
    }
  });

  test('an HVM guest without PV drivers cannot be cleanly shut down or suspended', async () => {
    const vm = await call('VM.create', hvmRecord('hvm-nodrivers', { other_config: { sim_no_agent: 'true' } }));
    await call('VM.start', vm, false, false);
    const r = await record(vm);
    assert.equal(r.allowed_operations.includes('clean_shutdown'), false);
    assert.equal(r.allowed_operations.includes('suspend'), false);
    assert.deepEqual(await failure('VM.clean_shutdown', vm), ['OPERATION_NOT_ALLOWED', 'clean_shutdown not possible for HVM domains (are PV drivers installed?)']);
    assert.deepEqual(await failure('VM.suspend', vm), ['OPERATION_NOT_ALLOWED', 'suspend not possible for HVM domains (are PV drivers installed?)']);
    await call('VM.send_trigger', vm, 'power');
    await waitFor(async () => (await record(vm)).power_state === 'Halted', 'the ACPI power button to halt the guest');
    await call('VM.destroy', vm);
  });

  test('guest metrics come from the guest agent; networks from its interfaces', async () => {
    const net = await call('network.create', { name_label: 'vm-test-net', name_description: '', other_config: {} });
    const vm = await newVm('metrics');
    const vif = await call('VIF.create', { device: '0', network: net, VM: vm, MAC: '', MTU: 1500, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
    await call('VM.start', vm, false, false);
    const gmRef = await waitFor(async () => {
      const g = (await record(vm)).guest_metrics;
      return g !== NULL ? g : undefined;
    }, 'guest metrics');
    const gm = await call('VM_guest_metrics.get_record', gmRef);
    assert.equal(gm.os_version.distro, 'debian');
    assert.equal(gm.PV_drivers_version.major, '7');
    assert.equal(gm.PV_drivers_up_to_date, true);
    assert.match(gm.networks['0/ip'], /^10\.\d+\.\d+\.\d+$/);
    assert.equal((await call('VIF.get_record', vif)).currently_attached, true);
    await call('VM.hard_shutdown', vm);
    assert.equal((await call('VIF.get_record', vif)).currently_attached, false);
    // a new boot throws the old guest's metrics away
    await call('VM.start', vm, false, false);
    const again = await waitFor(async () => {
      const g = (await record(vm)).guest_metrics;
      return g !== NULL ? g : undefined;
    }, 'new guest metrics');
    assert.notEqual(again, gmRef);
    assert.equal((await call('VM_guest_metrics.get_all')).includes(gmRef), false);
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
    await call('network.destroy', net);
  });

  test('hot-plug into a running VM: VBD.plug/unplug and VIF.plug/unplug go through the driver', async () => {
    const vm = await newVm('hotplug');
    await call('VM.start', vm, false, false);
    const vdi = await call('VDI.create', { name_label: 'hot', name_description: '', SR: sr, virtual_size: 64 * MiB, type: 'user', sharable: false, read_only: false, other_config: {} });
    const vbd = await call('VBD.create', { VM: vm, VDI: vdi, userdevice: '1', bootable: false, mode: 'RW', type: 'Disk', unpluggable: true, empty: false, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
    await call('VBD.plug', vbd);
    const b = await call('VBD.get_record', vbd);
    assert.deepEqual([b.currently_attached, b.device], [true, 'xvdb']);
    await call('VBD.unplug', vbd);
    assert.equal((await call('VBD.get_record', vbd)).currently_attached, false);
    const net = await call('network.create', { name_label: 'hotplug-net', name_description: '', other_config: {} });
    const vif = await call('VIF.create', { device: '1', network: net, VM: vm, MAC: '', MTU: 1500, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
    await call('VIF.plug', vif);
    assert.equal((await call('VIF.get_record', vif)).currently_attached, true);
    const gm = await waitFor(async () => {
      const g = (await record(vm)).guest_metrics;
      return g !== NULL ? g : undefined;
    }, 'guest metrics');
    await waitFor(async () => (await call('VM_guest_metrics.get_networks', gm))['1/ip'], 'the guest to report the new interface');
    await call('VIF.unplug', vif);
    assert.equal((await call('VIF.get_record', vif)).currently_attached, false);
    await call('VM.hard_shutdown', vm);
    await call('VM.destroy', vm);
    await call('VDI.destroy', vdi);
    await call('network.destroy', net);
  });

  test('setters declared as messages, and update_allowed_operations', async () => {
    const vm = await newVm('setters');
    await call('VM.set_platform', vm, { acpi: 'true' });
    await call('VM.add_to_platform', vm, 'apic', 'false');
    await call('VM.remove_from_platform', vm, 'acpi');
    assert.deepEqual((await record(vm)).platform, { apic: 'false' });
    await call('VM.set_other_config', vm, { a: '1' });
    await call('VM.add_to_other_config', vm, 'b', '2');
    await call('VM.remove_from_other_config', vm, 'a');
    assert.deepEqual((await record(vm)).other_config, { b: '2' });
    await call('VM.set_actions_after_crash', vm, 'preserve');
    assert.equal((await record(vm)).actions_after_crash, 'preserve');
    await call('VM.set_HVM_boot_policy', vm, 'BIOS order');
    assert.equal((await record(vm)).HVM_boot_policy, 'BIOS order');
    await call('VM.update_allowed_operations', vm);
    assert.ok((await record(vm)).allowed_operations.includes('start'));
    await call('VM.destroy', vm);
    assert.deepEqual(await failure('VM.get_record', vm), ['HANDLE_INVALID', 'VM', vm]);
  });
});

describe('clone, copy, provision', () => {
  test('a default template cloned, provisioned and started; the clone copied; destroy keeps the VDIs', async () => {
    const all = await call('VM.get_all_records');
    const [tpl] = Object.entries(all).find(([, r]: [string, any]) => r.is_a_template && r.PV_bootloader === 'pygrub' && r.other_config.default_template === 'true')!;
    const tplRec = all[tpl];
    const clone = await call('VM.clone', tpl, 'from-template');
    const c = await record(clone);
    assert.equal(c.is_a_template, true, 'a clone of a template is a template');
    assert.equal(c.other_config.default_template, undefined);
    assert.match(c.other_config.mac_seed, /^[0-9a-f-]{36}$/);
    assert.notEqual(c.other_config.mac_seed, tplRec.other_config.mac_seed);
    assert.equal(c.PV_bootloader, 'pygrub');
    assert.ok(c.allowed_operations.includes('provision'));
    // a client rewrites every sr="" of the disks spec to a real SR before provisioning
    const srUuid = await call('SR.get_uuid', sr);
    await call('VM.remove_from_other_config', clone, 'disks');
    await call('VM.add_to_other_config', clone, 'disks', (c.other_config.disks as string).replace(/sr=""/g, `sr="${srUuid}"`));
    await call('VM.provision', clone);
    const p = await record(clone);
    assert.equal(p.is_a_template, false);
    assert.equal(p.other_config.disks, undefined);
    assert.notEqual((await call('VM_metrics.get_record', p.metrics)).install_time, '19700101T00:00:00Z');
    assert.equal(p.VBDs.length, 1);
    const vbd = await call('VBD.get_record', p.VBDs[0]);
    assert.equal(vbd.userdevice, '0');
    assert.equal(vbd.bootable, true);
    assert.equal(vbd.mode, 'RW');
    assert.equal(vbd.type, 'Disk');
    assert.equal(vbd.unpluggable, false);
    assert.deepEqual(vbd.other_config, { owner: '' });
    const vdi = await call('VDI.get_record', vbd.VDI);
    assert.equal(vdi.virtual_size, 8 * GiB);
    assert.equal(vdi.name_description, 'Created by template provisioner');
    assert.equal(vdi.name_label, '0');
    assert.deepEqual(vdi.sm_config.vmhint, p.uuid);

    await call('VM.start', clone, false, false);
    const att = await call('VBD.get_record', p.VBDs[0]);
    assert.equal(att.currently_attached, true);
    assert.equal(att.device, 'xvda');
    assert.deepEqual(await failure('VM.copy', clone, 'copy', sr), ['VM_BAD_POWER_STATE', clone, 'halted, suspended', 'running']);
    await call('VM.clean_shutdown', clone);
    assert.equal((await call('VBD.get_record', p.VBDs[0])).currently_attached, false);

    const task = await call('Async.VM.copy', clone, 'copied', sr);
    const t = await waitTask(v.api, task);
    assert.equal(t.status, 'success', JSON.stringify(t.error_info));
    assert.equal(t.progress, 1);
    const copy = (t.result as string).replace(/<\/?value>/g, '');
    const cp = await record(copy);
    assert.equal(cp.name_label, 'copied');
    assert.equal(cp.VBDs.length, 1);
    const cpVdi = (await call('VBD.get_record', cp.VBDs[0])).VDI;
    assert.notEqual(cpVdi, vbd.VDI);
    assert.equal((await call('VDI.get_record', cpVdi)).SR, sr);

    for (const vm of [copy, clone]) await call('VM.destroy', vm);
    const vdis = await call('VDI.get_all');
    assert.ok(vdis.includes(vbd.VDI) && vdis.includes(cpVdi), 'VM.destroy leaves the disks');
    assert.equal((await call('VBD.get_all')).includes(p.VBDs[0]), false, 'the VBDs went with the VM');
    for (const x of [vbd.VDI, cpVdi]) await call('VDI.destroy', x);
  });

  test('provision with an SR uuid that does not exist: UUID_INVALID, nothing made', async () => {
    const tpl = await newVm('bad-sr-template', { other_config: { disks: '<provision><disk device="0" size="1073741824" sr="no-such-sr" bootable="true" type="system"/></provision>' } });
    await call('VM.set_is_a_template', tpl, true);
    const vdis = (await call('VDI.get_all')).length;
    assert.deepEqual(await failure('VM.provision', tpl), ['UUID_INVALID', 'sr', 'no-such-sr']);
    assert.equal((await call('VDI.get_all')).length, vdis);
    assert.equal((await record(tpl)).is_a_template, true);
    await call('VM.destroy', tpl);
  });

  test('clone of a halted VM with a VIF: fresh MAC from the new mac_seed', async () => {
    const net = await call('network.create', { name_label: 'clone-net', name_description: '', other_config: {} });
    const vm = await newVm('clone-vif', { other_config: { mac_seed: '00000000-0000-0000-0000-000000000001' } });
    const vif = await call('VIF.create', { device: '0', network: net, VM: vm, MAC: '', MTU: 1500, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
    const clone = await call('VM.clone', vm, 'clone-vif-2');
    const cv = await call('VIF.get_record', (await record(clone)).VIFs[0]);
    assert.notEqual(cv.MAC, (await call('VIF.get_record', vif)).MAC);
    assert.equal(cv.network, net);
    assert.equal(cv.device, '0');
    for (const x of [clone, vm]) await call('VM.destroy', x);
    await call('network.destroy', net);
  });
});
