// The xl domain configuration generated from VM records (PV with pygrub or a direct
// kernel, HVM in BIOS order; disks from VBDs, interfaces from VIFs), checked line by
// line and then read back by Xen's own parser: libxlutil's config reader and disk-spec
// parser (the code xl itself uses) where those libraries are installed (Debian
// libxenmisc4.17), and `xl -N create` on a Xen host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classes, NULL_REF } from '../../src/datamodel/model.js';
import type { VBDRecord, VIFRecord, VMRecord } from '../../src/datamodel/records.js';
import { buildDomainConfig, type DiskSource } from '../../src/vm/config.js';
import { diskSpec, renderXlConfig, splitArgs, xlString } from '../../drivers/xl/config.js';
import { findExecutable } from '../../drivers/select.js';

const MiB = 1024 * 1024;
const PY = fileURLToPath(new URL('../../../test/drivers/py/xlcfg.py', import.meta.url));

function record<T>(cls: string, over: Partial<T>): T {
  const out: Record<string, unknown> = {};
  for (const f of classes.get(cls)!.recordFields) out[f.name] = structuredClone(f.initial);
  return { ...out, ...over } as T;
}

const vm = (over: Partial<VMRecord>) => record<VMRecord>('VM', {
  uuid: '6f1e4a52-8c1d-4b0e-9d0f-2a7c9b3e1d44', name_label: 'web "front" 01', memory_static_max: 512 * MiB, memory_dynamic_max: 384 * MiB,
  memory_dynamic_min: 256 * MiB, memory_static_min: 128 * MiB, VCPUs_max: 4, VCPUs_at_startup: 2, actions_after_crash: 'restart', ...over,
});
const vbd = (over: Partial<VBDRecord>) => record<VBDRecord>('VBD', { VDI: 'OpaqueRef:vdi', mode: 'RW', type: 'Disk', ...over });
const vif = (over: Partial<VIFRecord>) => record<VIFRecord>('VIF', { MTU: 1500, ...over });

/** What libxlutil makes of a config file, or the reason it cannot be asked. */
function xenParse(text: string): Promise<any> {
  const dir = mkdtempSync(path.join(tmpdir(), 'xapid-xlcfg-'));
  const file = path.join(dir, 'domain.cfg');
  writeFileSync(file, text);
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', [PY, file], { timeout: 30_000 }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      const out = JSON.parse(stdout);
      out.stderr = stderr;
      resolve(out);
    });
  });
}

const LIBS = spawnSync('/usr/bin/python3', ['-c', "import ctypes; ctypes.CDLL('libxlutil.so.4.17'); ctypes.CDLL('libxenlight.so.4.17')"]).status === 0;
const LIB_SKIP = LIBS ? false : "Xen's libxlutil/libxenlight 4.17 are not installed (Debian package libxenmisc4.17): xl's parser cannot be asked";
const XL = findExecutable('xl');
const XL_SKIP = XL && existsSync('/proc/xen') ? false : 'no xl binary on a Xen host here (/proc/xen and xl): `xl -N create` cannot run';

const pvPygrub = () => {
  const vbds: Array<[string, VBDRecord]> = [
    ['OpaqueRef:data', vbd({ userdevice: '1', bootable: false })],
    ['OpaqueRef:root', vbd({ userdevice: '0', bootable: true })],
    ['OpaqueRef:cd', vbd({ userdevice: '3', type: 'CD', mode: 'RO', empty: true, VDI: NULL_REF })],
  ];
  const disks = new Map<string, DiskSource>([
    ['OpaqueRef:data', { path: '/srv/sr 1/data.qcow2', format: 'qcow2' }],
    ['OpaqueRef:root', { path: '/dev/VG_XenStorage/root', format: 'raw' }],
  ]);
  const vifs: Array<[string, VIFRecord]> = [
    ['OpaqueRef:vif1', vif({ device: '1', MAC: '00:16:3e:aa:bb:02', network: 'OpaqueRef:net2' })],
    ['OpaqueRef:vif0', vif({ device: '0', MAC: '00:16:3e:aa:bb:01', network: 'OpaqueRef:net1' })],
  ];
  const bridges = new Map([['OpaqueRef:net1', 'xenbr0'], ['OpaqueRef:net2', 'xapi1']]);
  return buildDomainConfig({
    vm: vm({ PV_bootloader: 'pygrub', PV_bootloader_args: "--entry=1 'two words'", PV_args: 'console=hvc0 root=/dev/xvda1', VCPUs_params: { weight: '512', cap: '50', mask: '0,1' } }),
    vbds, vifs, bridges, disks,
  });
};

test('PV with pygrub: bootloader, its hints, bootable disk first, empty CD, interfaces, memory, VCPUs, preserve actions', async () => {
  const cfg = pvPygrub();
  assert.equal(cfg.name, 'web-front-01-6f1e4a52');
  const text = renderXlConfig(cfg);
  const lines = text.split('\n');
  for (const l of [
    'name = "web-front-01-6f1e4a52"', 'uuid = "6f1e4a52-8c1d-4b0e-9d0f-2a7c9b3e1d44"', 'type = "pv"', 'memory = 384', 'maxmem = 512',
    'vcpus = 2', 'maxvcpus = 4', 'cpu_weight = 512', 'cap = 50', 'cpus = "0,1"', 'bootloader = "pygrub"',
    'bootloader_args = [ "--entry=1", "two words" ]', 'cmdline = "console=hvc0 root=/dev/xvda1"',
    'on_poweroff = "preserve"', 'on_reboot = "preserve"', 'on_crash = "preserve"',
    'disk = [ "format=raw, vdev=xvda, access=rw, target=/dev/VG_XenStorage/root", "format=qcow2, vdev=xvdb, access=rw, target=/srv/sr 1/data.qcow2", "vdev=xvdd, access=ro, devtype=cdrom" ]',
    'vif = [ "devid=0,mac=00:16:3e:aa:bb:01,bridge=xenbr0", "devid=1,mac=00:16:3e:aa:bb:02,bridge=xapi1" ]',
  ]) assert.ok(lines.includes(l), `missing line: ${l}\n${text}`);
  assert.ok(!/^kernel/m.test(text), 'no kernel line: the bootloader finds it');
  assert.ok(!/^boot =/m.test(text), 'no HVM boot order for a PV guest');
});

test('PV with a kernel in dom0 and no bootloader; PV with neither boots with pygrub', () => {
  const direct = renderXlConfig(buildDomainConfig({
    vm: vm({ PV_bootloader: '', PV_kernel: '/boot/vmlinuz-6.1', PV_ramdisk: '/boot/initrd.img-6.1', PV_args: 'quiet' }),
    vbds: [], vifs: [], bridges: new Map(), disks: new Map(),
  }));
  assert.match(direct, /^kernel = "\/boot\/vmlinuz-6.1"$/m);
  assert.match(direct, /^ramdisk = "\/boot\/initrd.img-6.1"$/m);
  assert.match(direct, /^cmdline = "quiet"$/m);
  assert.doesNotMatch(direct, /^bootloader/m);
  assert.match(direct, /^disk = \[ {2}\]$/m);
  const neither = renderXlConfig(buildDomainConfig({ vm: vm({ PV_bootloader: '', PV_kernel: '' }), vbds: [], vifs: [], bridges: new Map(), disks: new Map() }));
  assert.match(neither, /^bootloader = "pygrub"$/m);
});

const hvm = () => buildDomainConfig({
  vm: vm({ HVM_boot_policy: 'BIOS order', HVM_boot_params: { order: 'dc' }, HVM_shadow_multiplier: 2, platform: { acpi: 'true', apic: 'true', pae: 'true', viridian: 'false', nx: 'true' } }),
  vbds: [['OpaqueRef:hd', vbd({ userdevice: '0', bootable: true })], ['OpaqueRef:iso', vbd({ userdevice: '3', type: 'CD', mode: 'RO' })]],
  vifs: [['OpaqueRef:v', vif({ device: '0', MAC: '00:16:3e:00:00:0a', network: 'OpaqueRef:n' })]],
  bridges: new Map([['OpaqueRef:n', 'xenbr0']]),
  disks: new Map<string, DiskSource>([['OpaqueRef:hd', { path: '/var/sr/hd.qcow2', format: 'qcow2' }], ['OpaqueRef:iso', { path: '/srv/iso/debian.iso', format: 'raw' }]]),
});

test('HVM in BIOS order: boot order, platform flags, shadow memory, IDE disk names, CD drive', () => {
  const text = renderXlConfig(hvm());
  for (const l of [
    'type = "hvm"', 'boot = "dc"', 'acpi = 1', 'apic = 1', 'pae = 1', 'viridian = 0',
    'disk = [ "format=qcow2, vdev=hda, access=rw, target=/var/sr/hd.qcow2", "format=raw, vdev=hdd, access=ro, devtype=cdrom, target=/srv/iso/debian.iso" ]',
  ]) assert.ok(text.split('\n').includes(l), `missing line: ${l}\n${text}`);
  assert.match(text, /^shadow_memory = \d+$/m);
  assert.doesNotMatch(text, /^bootloader|^kernel/m);
});

test('strings are quoted for xl; device specs refuse what would split them', () => {
  assert.equal(xlString('a "b" \\ c'), '"a \\"b\\" \\\\ c"');
  assert.equal(xlString('line\nbreak'), '"line break"');
  assert.deepEqual(splitArgs(`-a "b c" 'd e' f\\ g`), ['-a', 'b c', 'd e', 'f\\', 'g']);
  assert.throws(() => diskSpec({ vdev: 'xvda,x', userdevice: '0', vbd: 'r', path: '/x', format: 'raw', readonly: false, cdrom: false, bootable: true }));
});

test("Xen's own parser (libxlutil) reads every generated file as xapid means it", { skip: LIB_SKIP }, async () => {
  for (const cfg of [pvPygrub(), hvm()]) {
    const text = renderXlConfig(cfg);
    const r = await xenParse(text);
    assert.equal(r.rc, 0, `libxlutil refused the file:\n${r.stderr}\n${text}`);
    assert.equal(r.strings.name, cfg.name);
    assert.equal(r.strings.uuid, cfg.uuid);
    assert.equal(r.strings.type, cfg.hvm ? 'hvm' : 'pv');
    assert.equal(r.longs.memory, Math.floor(cfg.memory.targetBytes / MiB));
    assert.equal(r.longs.maxmem, Math.floor(cfg.memory.maxBytes / MiB));
    assert.deepEqual([r.longs.vcpus, r.longs.maxvcpus], [cfg.vcpus.atStartup, cfg.vcpus.max]);
    for (const a of ['on_poweroff', 'on_reboot', 'on_crash']) assert.equal(r.strings[a], 'preserve');
    assert.equal(r.disks.length, cfg.disks.length);
    for (const d of r.disks) assert.equal(d.rc, 0, `a disk spec was refused:\n${r.stderr}`);
    const parsed = r.disks.map((d: any) => d.parsed);
    for (const d of cfg.disks) {
      const p = parsed.find((x: any) => x.vdev === d.vdev);
      assert.ok(p, `disk ${d.vdev} parsed`);
      if (d.format === 'empty') assert.equal(p.format, 'empty');
      else {
        assert.equal(p.pdev_path, d.path);
        assert.equal(p.format, d.format);
      }
      assert.equal(p.readwrite ?? 0, d.readonly ? 0 : 1);
      assert.equal(p.is_cdrom ?? 0, d.cdrom ? 1 : 0);
    }
    assert.equal(r.lists.vif.length, cfg.nics.length);
    if (!cfg.hvm) {
      assert.equal(r.strings.bootloader, 'pygrub');
      assert.deepEqual(r.lists.bootloader_args, ['--entry=1', 'two words']);
      assert.equal(r.strings.cmdline, 'console=hvc0 root=/dev/xvda1');
    } else {
      assert.equal(r.strings.boot, 'dc');
    }
  }
  // and it does refuse a broken file, so the checks above mean something
  const broken = await xenParse('name = "x"\ndisk = [ "vdev=xvda, bogus=1, target=/x" \n');
  assert.notEqual(broken.rc, 0);
});

test('`xl -N create` accepts the generated files (on a Xen host)', { skip: XL_SKIP }, () => {
  for (const cfg of [pvPygrub(), hvm()]) {
    const dir = mkdtempSync(path.join(tmpdir(), 'xapid-xlN-'));
    const file = path.join(dir, 'domain.cfg');
    writeFileSync(file, renderXlConfig(cfg));
    const r = spawnSync(XL!, ['-N', 'create', file], { encoding: 'utf8', timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, `xl -N create: ${r.stderr}`);
  }
});
