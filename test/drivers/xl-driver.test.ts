// The xl driver without Xen: what xl and the xenstore tools print is read correctly,
// each command line is the one xl expects, every command has a timeout, and each kind
// of failure becomes the XenAPI error a client expects, carrying xl's own message.
// The failure texts below are the ones xl 4.17 and libxl print.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DriverError, type DomainConfig } from '../../drivers/driver.js';
import { XlDriver } from '../../drivers/xl/index.js';
import { VIF_SCRIPT } from '../../drivers/xl/config.js';
import { classify, spawnRunner, summary, type Runner } from '../../drivers/xl/exec.js';
import { domainState, parseXenstoreLs, parseXlInfo, parseXlListLong, parseXlListVerbose } from '../../drivers/xl/parse.js';
import { vmError } from '../../src/vm/errors.js';

const MiB = 1024 * 1024;
const UUID = '6f1e4a52-8c1d-4b0e-9d0f-2a7c9b3e1d44';

// As xl list -v prints it: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f" then uuid and reason.
const LIST_V = [
  'Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID                            Reason-Code\tSecurity Label',
  'Domain-0                                     0  1536     2     r-----      41.7 00000000-0000-0000-0000-000000000000        -                -',
  `web-6f1e4a52                                 3   256     2     -b----       1.5 ${UUID}        -                -`,
  'paused-one                                   4   128     1     --p---       0.0 11111111-2222-3333-4444-555555555555        -                -',
  'halted-one                                   5   128     1     ---s--       2.0 22222222-2222-3333-4444-555555555555        0                -',
  'rebooting                                    6   128     1     ---s--       2.0 33333333-2222-3333-4444-555555555555        1                -',
  'crashed                                      7   128     1     ---sc-       2.0 44444444-2222-3333-4444-555555555555        3                -',
  'dying                                        8   128     1     -----d       2.0 55555555-2222-3333-4444-555555555555        -                -',
].join('\n');

test('xl list -v: domains, states and shutdown reasons', () => {
  const l = parseXlListVerbose(LIST_V);
  assert.deepEqual(l.map((d) => [d.name, d.domid, d.state, d.shutdownReason ?? '']), [
    ['Domain-0', 0, 'running', ''], ['web-6f1e4a52', 3, 'running', ''], ['paused-one', 4, 'paused', ''],
    ['halted-one', 5, 'shutdown', 'poweroff'], ['rebooting', 6, 'shutdown', 'reboot'], ['crashed', 7, 'crashed', 'crash'], ['dying', 8, 'dying', ''],
  ]);
  assert.equal(l[1]!.memoryBytes, 256 * MiB);
  assert.equal(l[1]!.vcpus, 2);
  assert.equal(l[1]!.uuid, UUID);
  assert.equal(l[1]!.cpuTimeSec, 1.5);
  assert.deepEqual(domainState('---s--', '2'), { state: 'shutdown', reason: 'suspend' });
});

test('xl info, xl list -l and xenstore-ls -f are read', () => {
  const info = parseXlInfo('host                   : dom0\nrelease                : 6.1.0-18-amd64\ntotal_memory           : 3071\nfree_memory            : 1402\nnr_cpus                : 2\nxen_version            : 4.17.3\n');
  assert.deepEqual([info.total_memory, info.free_memory, info.nr_cpus, info.xen_version], ['3071', '1402', '2', '4.17.3']);
  const long = parseXlListLong(`[\n{ "domid": 3, "config": { "c_info": { "type": "pv", "name": "web", "uuid": "${UUID}" }, "b_info": { "max_vcpus": 4, "max_memkb": 524288, "target_memkb": 262144 } } }\n]`);
  assert.equal(long[0]!.config.b_info!.max_memkb, 524288);
  const ls = parseXenstoreLs('/local/domain/3/data = ""\n/local/domain/3/data/os_name = "Debian GNU/Linux 12 \\"bookworm\\""\n/local/domain/3/attr/eth0/ip = "10.0.0.5"\n/local/domain/3/data/note = "tab\\there\\x41"\n', '/local/domain/3');
  assert.deepEqual(ls, { data: '', 'data/os_name': 'Debian GNU/Linux 12 "bookworm"', 'attr/eth0/ip': '10.0.0.5', 'data/note': 'tab\thereA' });
});

/** A runner that answers from a script and records every command line. */
function fakeRunner(answer: (cmd: string, args: string[]) => { stdout?: string; fail?: string; code?: number }): { run: Runner; calls: string[][] } {
  const calls: string[][] = [];
  const run: Runner = async (cmd, args, opts) => {
    assert.ok(opts.timeoutMs > 0 && opts.timeoutMs <= 300_000, `${cmd} has a timeout`);
    calls.push([path.basename(cmd), ...args]);
    const a = answer(path.basename(cmd), args);
    if (a.fail !== undefined) throw new DriverError(classify(a.fail), `${cmd} ${args.join(' ')} failed (exit ${a.code ?? 1}): ${a.fail}`, { command: `${cmd} ${args.join(' ')}`, exitCode: a.code ?? 1, stderr: a.fail });
    return { stdout: a.stdout ?? '', stderr: '' };
  };
  return { run, calls };
}

const cfg: DomainConfig = {
  uuid: UUID, name: 'web-6f1e4a52', hvm: false, memory: { maxBytes: 512 * MiB, targetBytes: 256 * MiB, shadowMiB: 0 },
  vcpus: { max: 2, atStartup: 2 }, pv: { bootloader: 'pygrub', bootloaderArgs: '', kernel: '', ramdisk: '', args: 'console=hvc0' },
  platform: {}, disks: [{ vdev: 'xvda', userdevice: '0', vbd: 'OpaqueRef:b', path: '/dev/vg/root', format: 'raw', readonly: false, cdrom: false, bootable: true }],
  nics: [{ devid: 0, vif: 'OpaqueRef:v', mac: '00:16:3e:00:00:01', bridge: 'xenbr0', mtu: 1500 }], xenstoreData: {},
};

test('create: writes the config, runs `xl create -p FILE`, finds the domid, reads its state', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'xapid-xl-'));
  try {
    const { run, calls } = fakeRunner((cmd, args) => {
      if (args[0] === 'domid') return { stdout: '3\n' };
      if (args[0] === 'list' && args[1] === '-v') return { stdout: LIST_V };
      if (args[0] === 'list' && args[1] === '-l') return { stdout: `[{"domid":3,"config":{"c_info":{"type":"pv"},"b_info":{"max_vcpus":2,"max_memkb":524288}}}]` };
      return {};
    });
    const xl = new XlDriver({ configDir: dir, runner: run });
    const info = await xl.create(cfg, { paused: true });
    assert.deepEqual(calls[0], ['xl', 'create', '-p', path.join(dir, `${UUID}.cfg`)]);
    assert.deepEqual(calls[1], ['xl', 'domid', 'web-6f1e4a52']);
    assert.equal(info.domid, 3);
    assert.equal(info.maxMemoryBytes, 512 * MiB);
    const text = readFileSync(path.join(dir, `${UUID}.cfg`), 'utf8');
    assert.match(text, /^on_crash = "preserve"$/m);
    // Every vif names xapid's own hotplug script, which exists and can be run.
    assert.ok(text.includes(`vif = [ "devid=0,mac=00:16:3e:00:00:01,bridge=xenbr0,script=${VIF_SCRIPT}" ]`), text);
    accessSync(VIF_SCRIPT, constants.X_OK);
    calls.length = 0;
    await xl.pause(3);
    await xl.setMemoryTarget(3, 200 * MiB);
    await xl.setVcpus(3, 1);
    await xl.sysrq(3, 'c');
    await xl.trigger(3, 'nmi');
    await xl.attachDisk(3, { ...cfg.disks[0]!, vdev: 'xvdb', path: '/srv/x y.qcow2', format: 'qcow2' });
    await xl.attachNic(3, { ...cfg.nics[0]!, devid: 1 });
    await xl.detachDisk(3, 'xvdb', true);
    await xl.save(3, '/var/lib/xen/save', 60_000);
    await xl.xenstoreWrite('/local/domain/3/vm-data/k', 'v');
    const cmds = calls.filter((c) => !(c[1] === 'list'));
    assert.deepEqual(cmds, [
      ['xl', 'pause', '3'], ['xl', 'mem-set', '3', `${200 * 1024}k`], ['xl', 'vcpu-set', '3', '1'], ['xl', 'sysrq', '3', 'c'], ['xl', 'trigger', '3', 'nmi'],
      ['xl', 'block-attach', '3', 'format=qcow2, vdev=xvdb, access=rw, target=/srv/x y.qcow2'],
      ['xl', 'network-attach', '3', 'devid=1', 'mac=00:16:3e:00:00:01', 'bridge=xenbr0', `script=${VIF_SCRIPT}`],
      ['xl', 'block-detach', '--force', '3', 'xvdb'], ['xl', 'save', '3', '/var/lib/xen/save'], ['xenstore-write', '/local/domain/3/vm-data/k', 'v'],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed create removes what xl left behind and becomes a precise XenAPI error with xl\'s message', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'xapid-xl-'));
  const vm = 'OpaqueRef:vm';
  const failures: Array<[string, string[]]> = [
    ['libxl: error: libxl_bootloader.c:650:bootloader_finished: Domain 5:bootloader failed - consult logfile /var/log/xen/bootloader.5.log', ['BOOTLOADER_FAILED', vm]],
    ['libxl: error: libxl_create.c:720:libxl__domain_make: Domain 5:domain creation fail: cannot allocate memory\nlibxl: error: libxl_create.c:1321:initiate_domain_create: cannot make domain: -3', ['HOST_NOT_ENOUGH_FREE_MEMORY']],
    ['libxl: error: libxl_dom.c:590:libxl__build_pv: xc_dom_build failed: Invalid kernel', ['DOMAIN_BUILDER_ERROR']],
    ['libxl: error: libxl_create.c:89:libxl__domain_config_setdefault: domain with name "web" already exists.', ['DOMAIN_EXISTS', vm, '9']],
    ['something nobody has seen before', ['DOMAIN_BUILDER_ERROR']],
  ];
  try {
    for (const [stderr, expected] of failures) {
      const { run, calls } = fakeRunner((_cmd, args) => (args[0] === 'create' ? { fail: stderr, code: 3 } : args[0] === 'domid' ? { stdout: '9\n' } : {}));
      const xl = new XlDriver({ configDir: dir, runner: run });
      const e = await xl.create(cfg, { paused: true }).then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof DriverError, stderr);
      if (expected[0] === 'DOMAIN_EXISTS') assert.deepEqual(calls.at(-1), ['xl', 'domid', 'web-6f1e4a52'], 'the other domain is left alone');
      else assert.deepEqual(calls.at(-1), ['xl', 'destroy', 'web-6f1e4a52'], 'the leftover domain is destroyed');
      const x = vmError(e, vm, 'start');
      assert.deepEqual(x.description.slice(0, expected.length), expected, stderr);
      if (expected[0] !== 'HOST_NOT_ENOUGH_FREE_MEMORY' && expected[0] !== 'DOMAIN_EXISTS') assert.ok(x.description.join(' ').includes(stderr.split('\n').at(-1)!.slice(0, 40)), `xl's message is kept: ${x.description.join(' | ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('failures of other commands map to the error of the operation', () => {
  const vm = 'OpaqueRef:vm';
  const e = (stderr: string) => new DriverError(classify(stderr), `xl: ${stderr}`, { stderr, command: 'xl' });
  assert.deepEqual(vmError(e('PV control interface not available'), vm, 'clean_shutdown').description, ['VM_MISSING_PV_DRIVERS', vm]);
  assert.deepEqual(vmError(e('libxl: error: libxl_domain.c:1155:libxl_domain_pause: Invalid domain identifier'), vm, 'pause').description, ['VM_HALTED', vm]);
  assert.deepEqual(vmError(new DriverError('timeout', 'xl save 3 f: no answer after 10s', { timeoutSec: 10 }), vm, 'suspend').description, ['VM_SUSPEND_TIMEOUT', vm, '10']);
  assert.deepEqual(vmError(new DriverError('ack-timeout', 'no ack', {}), vm, 'clean_shutdown').description, ['VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', vm]);
  assert.deepEqual(vmError(new DriverError('timeout', 'x', { timeoutSec: 5 }), vm, 'attach', { type: 'VBD', ref: 'OpaqueRef:b' }).description, ['DEVICE_ATTACH_TIMEOUT', 'VBD', 'OpaqueRef:b']);
  assert.deepEqual(vmError(e('libxl: error: libxl_device.c:1297:device_backend_callback: unable to remove device with path /local/domain/0/backend/vbd/3/51728'), vm, 'detach', { type: 'VBD', ref: 'OpaqueRef:b' }).description.slice(0, 3), ['DEVICE_DETACH_REJECTED', 'VBD', 'OpaqueRef:b']);
  assert.deepEqual(vmError(new DriverError('unsupported', 'xl has no command to change the shadow memory of a running domain'), vm, 'shadow').description, ['OPERATION_NOT_ALLOWED', 'xl has no command to change the shadow memory of a running domain']);
});

test('failures met on real Xen (npm run test:xen) keep their cause in the XenAPI error', () => {
  // `xl create` of a PV config whose kernel file is missing, Xen 4.17 (Debian bookworm):
  // libxc names the file first, libxl then reports the failed build and its clean-up.
  const stderr = [
    "xc: error: panic: xg_dom_core.c:205: failed to open file '/e2e/no-such-kernel': No such file or directory: Internal error",
    'libxl: error: libxl_create.c:1640:domcreate_rebuild_done: Domain 7:cannot (re-)build domain: -3',
    'libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 7:Non-existant domain',
    'libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 7:Unable to destroy guest',
    'libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain 7:Destruction of domain failed',
    '',
  ].join('\n');
  const e = new DriverError(classify(stderr), `xl create -p x.cfg failed (exit 3): ${summary(stderr)}`, { command: 'xl create -p x.cfg', exitCode: 3, stderr });
  assert.equal(e.kind, 'build');
  const d = vmError(e, 'OpaqueRef:vm', 'start').description;
  assert.deepEqual(d.slice(0, 3), ['DOMAIN_BUILDER_ERROR', 'xl create -p x.cfg', '3']);
  assert.match(d[3]!, /failed to open file '\/e2e\/no-such-kernel'/);
  assert.match(d[3]!, /Destruction of domain failed$/);
  // Short messages are kept whole.
  assert.equal(summary('a\n\nb\n'), 'a | b');
});

test('every command runs with a timeout: an overrun is killed and reported; a missing binary is reported', async () => {
  const slow = await spawnRunner('sleep', ['30'], { timeoutMs: 200 }).then(() => undefined, (e: unknown) => e);
  assert.ok(slow instanceof DriverError && slow.kind === 'timeout', String(slow));
  assert.match((slow as DriverError).message, /sleep 30: no answer after 0.2s/);
  assert.deepEqual(vmError(slow, 'OpaqueRef:vm', 'clean_shutdown').description, ['VM_SHUTDOWN_TIMEOUT', 'OpaqueRef:vm', '0.2']);
  const none = await spawnRunner('/nonexistent/xl', ['list'], { timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
  assert.ok(none instanceof DriverError && none.kind === 'unsupported', String(none));
  const bad = await spawnRunner('sh', ['-c', 'echo "libxl: error: domain not found" >&2; exit 1'], { timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
  assert.ok(bad instanceof DriverError && bad.kind === 'no-such-domain' && bad.detail.exitCode === 1 && /domain not found/.test(bad.message), String(bad));
});

test('the change feed reports new, changed and vanished domains from xl list -v', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'xapid-xl-'));
  let listing = LIST_V;
  const { run } = fakeRunner((_cmd, args) => (args[0] === 'list' && args[1] === '-v' ? { stdout: listing } : args[0] === 'list' ? { fail: 'no config' } : {}));
  const xl = new XlDriver({ configDir: dir, runner: run });
  const events: string[] = [];
  xl.subscribe((e) => events.push(e.kind === 'changed' ? `changed ${e.info.domid} ${e.info.state}` : `${e.kind} ${e.domid}`));
  await xl.rescan();
  assert.ok(events.includes('changed 3 running') && events.includes('changed 7 crashed'));
  events.length = 0;
  listing = LIST_V.split('\n').filter((l) => !l.startsWith('dying')).join('\n').replace('-b----       1.5', '--p---       1.5');
  await xl.rescan();
  assert.deepEqual(events.sort(), ['changed 3 paused', 'gone 8']);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(existsSync(dir), false);
});
