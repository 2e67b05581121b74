// The real-Xen scenario. Runs inside the e2e image's dom0 (see test/xen/README.md):
// starts xapid with the xl driver and drives one PV guest through its whole life over
// the XenAPI, checking each step against the API and against xl/xenstore directly.
// Prints "E2E-STEP PASS|FAIL name seconds" lines and an "E2E-SUMMARY" line; stops at
// the first failed step, prints what it knows (xapid's log, xl list, the guest's
// xenstore tree and console) and exits 1.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { connect, type Api } from '../helpers/api.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { pvRecord } from '../vm/helpers.js';

const MiB = 1024 * 1024;
const STATE = process.env.E2E_STATE_DIR ?? '/var/lib/xapid/state';
const SR_DIR = process.env.E2E_SR_DIR ?? '/var/lib/xapid/sr';
const KERNEL = process.env.E2E_KERNEL ?? '/e2e/vmlinux';
const RAMDISK = process.env.E2E_RAMDISK ?? '/e2e/guest-initrd.gz';
const CONSOLE_DIR = '/var/log/xen/console';
const DISK_MARK = 'XAPID-E2E-DISK written from inside the guest';

// ---- dom0 tools, run directly to check what xapid claims -------------------------------

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface XlDomain {
  domid: number;
  name: string;
  uuid: string;
  flags: string;
}

/** `xl list -v`, parsed independently of the driver's parser. */
function xlList(): XlDomain[] {
  return sh('xl', ['list', '-v']).split('\n').slice(1).flatMap((l) => {
    const t = l.trim().split(/\s+/);
    const u = t.findIndex((x) => /^[0-9a-f-]{36}$/.test(x));
    if (u < 6) return [];
    return [{ name: t.slice(0, u - 5).join(' '), domid: Number(t[u - 5]), flags: t[u - 2]!, uuid: t[u]! }];
  });
}

function xlDomain(uuid: string): XlDomain | undefined {
  return xlList().find((d) => d.uuid === uuid);
}

/** The domain's entry in `xl list -l` (its libxl config, as JSON). */
function xlLong(domid: number): any {
  const v = JSON.parse(sh('xl', ['list', '-l', String(domid)]));
  return Array.isArray(v) ? v[0] : v;
}

function xsRead(p: string): string | undefined {
  const r = spawnSync('xenstore-read', [p], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? r.stdout.replace(/\n$/, '') : undefined;
}

function xsWrite(p: string, v: string): void {
  sh('xenstore-write', [p, v]);
}

function heartbeat(domid: number): number {
  return Number(xsRead(`/local/domain/${domid}/data/e2e-heartbeat`) ?? 0);
}

function consoleLog(name: string): string {
  const f = path.join(CONSOLE_DIR, `guest-${name}.log`);
  return existsSync(f) ? readFileSync(f, 'utf8').replace(/\r/g, '') : '';
}

// ---- the steps -------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutS = 120): Promise<T> {
  const end = Date.now() + timeoutS * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`gave up after ${timeoutS}s waiting for ${what}`);
    await sleep(250);
  }
}

function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

class Run {
  passed = 0;
  failed = 0;
  daemon?: TestDaemon;
  api!: Api;
  lastDomid = -1;

  async step(name: string, body: () => Promise<void>): Promise<void> {
    const t0 = Date.now();
    try {
      await body();
      this.passed++;
      console.log(`E2E-STEP PASS ${name} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    } catch (e) {
      this.failed++;
      const cause = (e as { cause?: unknown }).cause;
      console.log(`E2E-STEP FAIL ${name} ${((Date.now() - t0) / 1000).toFixed(1)}s: ${(e as Error).stack ?? e}${cause ? `\ncaused by: ${String(cause)}` : ''}`);
      throw e;
    }
  }

  async start(): Promise<void> {
    mkdirSync(STATE, { recursive: true });
    this.daemon = await startDaemon({
      stateDir: STATE,
      // The guest's crash is tested with an immediate restart.
      args: ['--driver', 'xl', '--network-mode', 'host', '--crash-guard', '0', '--reboot-guard', '0', '--shutdown-timeout', '180'],
    });
    this.api = await connect(this.daemon.url);
  }

  call(method: string, ...args: unknown[]): Promise<any> {
    return this.api.call(method, ...args);
  }

  async vm(ref: string): Promise<Record<string, any>> {
    return this.call('VM.get_record', ref);
  }

  /** Waits until the VM is in `state` with no operation in progress. */
  waitPower(vm: string, state: string, timeoutS = 180, extra: (r: Record<string, any>) => boolean = () => true): Promise<Record<string, any>> {
    return waitFor(`VM to be ${state}`, async () => {
      const r = await this.vm(vm);
      return r.power_state === state && Object.keys(r.current_operations).length === 0 && extra(r) ? r : undefined;
    }, timeoutS);
  }

  /** The API and xl agree that the VM runs as one domain; returns its domid. */
  async checkRunning(vm: string, flag: 'r' | 'p' = 'r'): Promise<number> {
    const r = await this.vm(vm);
    const d = xlDomain(r.uuid);
    check(d, `xl list shows a domain with the VM's uuid ${r.uuid}`);
    check(d!.domid === Number(r.domid), `VM.domid ${r.domid} is xl's domid ${d!.domid}`);
    const paused = d!.flags[2] === 'p';
    check(flag === 'p' ? paused : !paused, `xl state ${d!.flags} is ${flag === 'p' ? 'paused' : 'not paused'}`);
    this.lastDomid = d!.domid;
    return d!.domid;
  }

  checkGone(uuid: string): void {
    check(!xlDomain(uuid), `xl list has no domain with uuid ${uuid} (it shows ${JSON.stringify(xlList())})`);
  }

  /** The guest's heartbeat in xenstore rises (it runs). */
  async heartbeatRises(domid: number, timeoutS = 60): Promise<void> {
    const h0 = heartbeat(domid);
    await waitFor(`the guest's heartbeat to rise past ${h0}`, () => heartbeat(domid) > h0 + 1, timeoutS);
  }

  diagnostics(): void {
    console.log('----- E2E DIAGNOSTICS -----');
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
      console.log(`$ ${cmd} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
    };
    run('xl', ['list', '-v']);
    if (this.lastDomid > 0) run('xenstore-ls', ['-f', `/local/domain/${this.lastDomid}`]);
    run('sh', ['-c', `for f in ${CONSOLE_DIR}/*.log /var/log/xen/xl-*.log; do echo "== $f"; head -30 "$f"; echo ...; tail -8 "$f"; done`]);
    run('ip', ['-br', 'link']);
    run('sh', ['-c', 'dmesg | tail -15']);
    const p = this.daemon?.proc;
    if (p) console.log(`xapid (pid ${p.pid}): ${p.exitCode === null && p.signalCode === null ? 'running' : `exited, code ${p.exitCode}, signal ${p.signalCode}`}`);
    console.log('----- xapid log (tail) -----');
    console.log((this.daemon?.logs ?? []).join('\n').split('\n').slice(-80).join('\n'));
  }
}

async function main(): Promise<void> {
  const r = new Run();
  let vm = '';
  let uuid = '';
  let vdi = '';
  let network = '';
  try {
    await r.step('xapid starts with the xl driver', async () => {
      await r.start();
      check(r.daemon!.logs.some((l) => /"driver":"xl"|xl driver/.test(l)), 'the log says the xl driver was chosen');
    });

    await r.step('host bootstrap sees the real Xen host', async () => {
      const info = Object.fromEntries(sh('xl', ['info']).split('\n').map((l) => l.split(/\s*:\s*/, 2)).filter((p) => p.length === 2));
      const [host] = await r.call('host.get_all');
      const rec = await r.call('host.get_record', host);
      check(String(rec.software_version.xen ?? '').startsWith(info.xen_major + '.' + info.xen_minor), `software_version.xen "${rec.software_version.xen}" is Xen ${info.xen_version}`);
      check(rec.host_CPUs.length === Number(info.nr_cpus), `${rec.host_CPUs.length} host_CPUs for nr_cpus ${info.nr_cpus}`);
      const m = await r.call('host_metrics.get_record', rec.metrics);
      check(Number(m.memory_total) === Number(info.total_memory) * MiB, `memory_total ${m.memory_total} is xl's total_memory ${info.total_memory} MiB`);
      const vms = Object.values(await r.call('VM.get_all_records')) as Array<Record<string, any>>;
      check(vms.filter((v) => v.is_control_domain && v.domid === 0 && v.power_state === 'Running').length === 1, 'one control domain, running as domain 0');
    });

    await r.step('a file SR, a VDI, a network', async () => {
      const [host] = await r.call('host.get_all');
      const [pool] = await r.call('pool.get_all');
      mkdirSync(SR_DIR, { recursive: true });
      const sr = await r.call('SR.create', host, { location: SR_DIR }, 0, 'e2e SR', '', 'file', '', false, {});
      await r.call('pool.set_suspend_image_SR', pool, sr);
      vdi = await r.call('VDI.create', { name_label: 'e2e disk', name_description: '', SR: sr, virtual_size: 16 * MiB, type: 'user', sharable: false, read_only: false, other_config: {} });
      network = await r.call('network.create', { name_label: 'e2e internal', name_description: '', other_config: {} });
      const bridge = await r.call('network.get_bridge', network);
      check(sh('ip', ['-o', 'link', 'show', bridge]).includes(bridge), `bridge ${bridge} exists in dom0`);
    });

    await r.step('create a PV VM with a disk and a NIC', async () => {
      vm = await r.call('VM.create', pvRecord('e2e-guest', {
        PV_kernel: KERNEL, PV_ramdisk: RAMDISK, PV_args: 'console=hvc0 quiet',
        memory_static_max: 128 * MiB, memory_dynamic_max: 128 * MiB, memory_dynamic_min: 128 * MiB, memory_static_min: 128 * MiB,
        actions_after_shutdown: 'destroy', actions_after_reboot: 'restart', actions_after_crash: 'restart',
      }));
      uuid = await r.call('VM.get_uuid', vm);
      await r.call('VBD.create', { VM: vm, VDI: vdi, userdevice: '0', bootable: false, mode: 'RW', type: 'Disk', unpluggable: true, empty: false, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
      await r.call('VIF.create', { device: '0', network, VM: vm, MAC: '', MTU: 1500, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
    });

    let domid = -1;
    await r.step('VM.start runs the guest', async () => {
      await r.call('VM.start', vm, false, false);
      await r.waitPower(vm, 'Running');
      domid = await r.checkRunning(vm);
      const long = xlLong(domid);
      check(long.config?.c_info?.uuid === uuid, 'xl list -l names the VM uuid');
      check(long.config?.b_info?.max_memkb === 128 * 1024, `xl list -l max_memkb ${long.config?.b_info?.max_memkb} is 128 MiB`);
      check(xsRead(`/local/domain/${domid}/vm`)?.includes(uuid), 'xenstore /local/domain/N/vm names the VM uuid');
    });

    await r.step('the guest boots and reports through xenstore (VM_guest_metrics)', async () => {
      await waitFor('the guest to write data/os_name', () => xsRead(`/local/domain/${domid}/data/os_name`), 240);
      const gm = await waitFor('VM.guest_metrics', async () => {
        const ref = await r.call('VM.get_guest_metrics', vm);
        if (ref === 'OpaqueRef:NULL') return undefined;
        const g = await r.call('VM_guest_metrics.get_record', ref);
        return g.networks['0/ip'] ? g : undefined;
      }, 120);
      check(gm.os_version.name === 'xapid e2e busybox guest', `os_version.name is "${gm.os_version.name}"`);
      check(gm.PV_drivers_version.major === '1', 'PV_drivers_version.major is 1');
      check(gm.networks['0/ip'] === '10.77.0.2', `networks 0/ip is ${gm.networks['0/ip']}`);
      await r.heartbeatRises(domid);
    });

    await r.step('the disk and the NIC are in the guest; packets reach it', async () => {
      check(xsRead(`/local/domain/${domid}/data/e2e-disk`) === 'written', 'the guest saw /dev/xvda and wrote to it');
      const vifs = await r.call('VM.get_VIFs', vm);
      const vif = await r.call('VIF.get_record', vifs[0]);
      check(vif.currently_attached === true, 'VIF currently_attached');
      check(xsRead(`/local/domain/${domid}/data/e2e-nic`) === vif.MAC.toLowerCase(), `the guest's eth0 has the VIF's MAC ${vif.MAC}`);
      const bridge = await r.call('network.get_bridge', network);
      const link = sh('ip', ['-o', 'link', 'show', `vif${domid}.0`]);
      check(link.includes(`master ${bridge}`), `vif${domid}.0 is on bridge ${bridge}: ${link.trim()}`);
      // xapid's hotplug script ran for the backend and netback connected to the guest.
      const backend = `/local/domain/0/backend/vif/${domid}/0`;
      check(String(xsRead(`${backend}/script`)).endsWith('/drivers/xl/hotplug/vif'), `the backend's hotplug script is xapid's: ${xsRead(`${backend}/script`)}`);
      check(xsRead(`${backend}/hotplug-status`) === 'connected', `hotplug-status is ${xsRead(`${backend}/hotplug-status`)}`);
      check(xsRead(`/local/domain/${domid}/device/vif/0/state`) === '4', 'the guest\'s vif 0 is connected (state 4)');
      // Packets flow: dom0, given an address on the bridge for a moment, pings the guest.
      sh('ip', ['addr', 'add', '10.77.0.1/24', 'dev', bridge]);
      try {
        const ping = sh('busybox', ['ping', '-c', '3', '-W', '10', '10.77.0.2']);
        check(/ 0% packet loss/.test(ping) || /[1-3] packets received/.test(ping), `dom0 pings the guest over ${bridge}: ${ping.trim().split('\n').at(-2)}`);
      } finally {
        sh('ip', ['addr', 'del', '10.77.0.1/24', 'dev', bridge]);
      }
      const vbds = await r.call('VM.get_VBDs', vm);
      check((await r.call('VBD.get_currently_attached', vbds[0])) === true, 'VBD currently_attached');
      check(xsRead(`/local/domain/${domid}/device/vbd/51712/state`) === '4', 'the guest\'s vbd 51712 (xvda) is connected (state 4)');
    });

    await r.step('VIF.plug and VIF.unplug on the running guest', async () => {
      const bridge = await r.call('network.get_bridge', network);
      const vif = await r.call('VIF.create', { device: '1', network, VM: vm, MAC: '', MTU: 1500, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} });
      await r.call('VIF.plug', vif);
      const backend = `/local/domain/0/backend/vif/${domid}/1`;
      check(xsRead(`${backend}/hotplug-status`) === 'connected', `hotplug-status of the new backend is ${xsRead(`${backend}/hotplug-status`)}`);
      await waitFor("the guest's vif 1 to connect", () => xsRead(`/local/domain/${domid}/device/vif/1/state`) === '4', 60);
      const link = sh('ip', ['-o', 'link', 'show', `vif${domid}.1`]);
      check(link.includes(`master ${bridge}`), `vif${domid}.1 is on bridge ${bridge}: ${link.trim()}`);
      check((await r.call('VIF.get_currently_attached', vif)) === true, 'VIF currently_attached after plug');
      await r.call('VIF.unplug', vif);
      await waitFor(`vif${domid}.1 to go`, () => spawnSync('ip', ['link', 'show', `vif${domid}.1`]).status !== 0, 60);
      check((await r.call('VIF.get_currently_attached', vif)) === false, 'VIF not currently_attached after unplug');
      await r.call('VIF.destroy', vif);
    });

    await r.step('pause and unpause', async () => {
      await r.call('VM.pause', vm);
      await r.waitPower(vm, 'Paused', 60);
      await r.checkRunning(vm, 'p');
      const h = heartbeat(domid);
      await sleep(3000);
      check(heartbeat(domid) <= h + 1, 'a paused guest does not beat');
      await r.call('VM.unpause', vm);
      await r.waitPower(vm, 'Running', 60);
      await r.checkRunning(vm);
      await r.heartbeatRises(domid);
    });

    await r.step('suspend to a VDI and resume: the guest goes on', async () => {
      const before = heartbeat(domid);
      await r.call('VM.suspend', vm);
      const rec = await r.waitPower(vm, 'Suspended', 240);
      r.checkGone(uuid);
      check(rec.suspend_VDI !== 'OpaqueRef:NULL', 'VM.suspend_VDI is set');
      await r.call('VM.resume', vm, false, false);
      await r.waitPower(vm, 'Running', 240);
      domid = await r.checkRunning(vm);
      check((await r.call('VM.get_suspend_VDI', vm)) === 'OpaqueRef:NULL', 'suspend_VDI is cleared after resume');
      await waitFor('the resumed guest to beat past its count before suspend', () => heartbeat(domid) > before + 1, 60);
    });

    await r.step('xapid killed and restarted adopts the running domain', async () => {
      await r.daemon!.stop('SIGKILL');
      check(xlDomain(uuid)?.domid === domid, 'the domain runs on without xapid');
      await r.start();
      const rec = await r.waitPower(vm, 'Running', 60);
      check(Number(rec.domid) === domid, `domid ${rec.domid} kept`);
      await r.call('VM.pause', vm);
      await r.waitPower(vm, 'Paused', 60);
      await r.checkRunning(vm, 'p');
      await r.call('VM.unpause', vm);
      await r.waitPower(vm, 'Running', 60);
    });

    await r.step('clean_shutdown: the guest acknowledges and halts', async () => {
      const name = xlDomain(uuid)!.name;
      await r.call('VM.clean_shutdown', vm);
      await r.waitPower(vm, 'Halted', 240);
      r.checkGone(uuid);
      check(consoleLog(name).includes('GUEST-SHUTDOWN'), 'the guest ran its shutdown actions (console log)');
    });

    await r.step('bytes the guest wrote are in the VDI', async () => {
      const loc = await r.call('VDI.get_location', vdi);
      const file = path.join(SR_DIR, loc);
      const head = '/tmp/e2e-vdi-head.raw';
      rmSync(head, { force: true });
      sh('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', `if=${file}`, `of=${head}`, 'bs=512', 'count=1']);
      const raw = readFileSync(head);
      check(raw.toString('latin1').startsWith(DISK_MARK), `the VDI starts with the guest's mark: ${JSON.stringify(raw.subarray(0, 48).toString('latin1'))}`);
    });

    await r.step('hard_shutdown', async () => {
      await r.call('VM.start', vm, false, false);
      await r.waitPower(vm, 'Running', 240);
      domid = await r.checkRunning(vm);
      await r.call('VM.hard_shutdown', vm);
      await r.waitPower(vm, 'Halted', 60);
      r.checkGone(uuid);
    });

    await r.step('a guest that halts by itself is Halted (actions_after_shutdown destroy)', async () => {
      await r.call('VM.start', vm, false, false);
      await r.waitPower(vm, 'Running', 240);
      domid = await r.checkRunning(vm);
      await waitFor('the guest to beat', () => heartbeat(domid) > 0, 240);
      xsWrite(`/local/domain/${domid}/data/e2e-command`, 'halt');
      await r.waitPower(vm, 'Halted', 120);
      r.checkGone(uuid);
    });

    await r.step('a guest crash (sysrq c) is restarted (actions_after_crash restart)', async () => {
      await r.call('VM.start', vm, false, false);
      await r.waitPower(vm, 'Running', 240);
      domid = await r.checkRunning(vm);
      await waitFor('the guest to beat', () => heartbeat(domid) > 0, 240);
      await r.call('VM.send_sysrq', vm, 'c');
      const rec = await r.waitPower(vm, 'Running', 240, (x) => Number(x.domid) !== domid);
      const crashed = domid;
      domid = await r.checkRunning(vm);
      check(domid !== crashed && Number(rec.domid) === domid, `a new domain ${domid} replaced the crashed ${crashed}`);
      await r.call('VM.hard_shutdown', vm);
      await r.waitPower(vm, 'Halted', 60);
      r.checkGone(uuid);
    });

    await r.step('a failing xl create is a XenAPI error, and leaves no domain behind', async () => {
      await r.call('VM.set_PV_kernel', vm, '/e2e/no-such-kernel');
      const err = await r.api.failure('VM.start', vm, false, false);
      console.log(`E2E-INFO VM.start with a missing kernel: ${JSON.stringify(err)}`);
      check(err[0] === 'DOMAIN_BUILDER_ERROR', `the error is DOMAIN_BUILDER_ERROR, not ${err[0]}`);
      check(err.some((p) => p.includes('xl create')), 'the error names the xl command');
      check(err.some((p) => p.includes('no-such-kernel')), 'the error says which file was missing');
      const rec = await r.waitPower(vm, 'Halted', 30);
      check(Number(rec.domid) === -1, 'the VM has no domid');
      r.checkGone(uuid);
      await r.call('VM.set_PV_kernel', vm, KERNEL);
    });

    await r.step('destroy the VM and its disk', async () => {
      const file = path.join(SR_DIR, await r.call('VDI.get_location', vdi));
      await r.call('VM.destroy', vm);
      await r.call('VDI.destroy', vdi);
      check(!existsSync(file), `the VDI's image ${file} is gone`);
      check(!xlDomain(uuid), 'no domain left');
    });
  } catch {
    r.diagnostics();
  } finally {
    await r.daemon?.stop().catch(() => undefined);
    console.log(`E2E-SUMMARY: ${r.passed} passed, ${r.failed} failed`);
    process.exitCode = r.failed ? 1 : 0;
  }
}

await main();
