// The `lvm` SR type: an LVM volume group on the block device named by device_config
// `device`. VDIs are thin logical volumes in one thin pool (made when the first VDI is
// created), so clone and snapshot are thin snapshots: instant, sharing blocks with the
// origin, and independent of it (removing either never harms the other; LVM frees
// shared blocks when the last volume using them goes). Every lvm command is limited
// to the SR's device with --devices, so no other disk of the machine is ever looked at.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { lvmUdevArgs } from '../lib/lvm-config.js';
import { Codes, PluginError, intArg, requireSr, requireVdi, roundUp, run, serve, type Request } from '../lib/protocol.js';

const POOL = 'xapid-thinpool';
const LV = /^LV-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VG_PREFIX = 'VG_XenStorage-';
const env = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1', LC_ALL: 'C' };

function deviceOf(dc: Record<string, string> | undefined): string {
  const d = dc?.device;
  if (!d) throw new PluginError(Codes.DEVICE_MISSING, 'The request is missing the device parameter');
  let st;
  try {
    st = statSync(d);
  } catch {
    throw new PluginError(Codes.SR_UNAVAILABLE, `device ${d} does not exist`);
  }
  if (!st.isBlockDevice()) throw new PluginError(Codes.INVALID_CONFIG, `${d} is not a block device`);
  return d;
}

const vgName = (srUuid: string) => `${VG_PREFIX}${srUuid}`;

// Without udev, a new volume's /dev node would never appear and wiping it would fail (lvm-config.ts).
function lvm(dev: string, sub: string, args: string[], allowFail = false) {
  return run('lvm', [sub, '--devices', dev, ...lvmUdevArgs(), ...args], { env, allowFail });
}

type Row = Record<string, string>;
async function report(dev: string, sub: 'pvs' | 'vgs' | 'lvs', fields: string, target: string[], allowFail = false): Promise<Row[]> {
  const r = await lvm(dev, sub, ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', fields, ...target], allowFail);
  if (r.code !== 0) return [];
  const key = sub.slice(0, 2) as 'pv' | 'vg' | 'lv';
  const j = JSON.parse(r.stdout) as { report: Array<Record<string, Row[]>> };
  return j.report[0]?.[key] ?? [];
}

const num = (s: string | undefined) => Math.round(Number.parseFloat(s ?? '0') || 0);

interface Sr { dev: string; vg: string }

async function openSr(req: Request): Promise<Sr> {
  const sr = requireSr(req);
  const dev = deviceOf(sr.device_config);
  const vg = vgName(sr.uuid);
  const rows = await report(dev, 'vgs', 'vg_name', [vg], true);
  if (rows.length === 0) throw new PluginError(Codes.SR_UNAVAILABLE, `volume group ${vg} is not on ${dev}`);
  return { dev, vg };
}

function lvOf(location: string): string {
  if (!LV.test(location)) throw new PluginError(Codes.VDI_MISSING, `${location} is not a volume of this SR`);
  return location;
}

async function lvInfo(sr: Sr, lv: string): Promise<Row | undefined> {
  const rows = await report(sr.dev, 'lvs', 'lv_name,lv_size,data_percent,pool_lv', [`${sr.vg}/${lv}`], true);
  return rows[0];
}

async function existingLv(sr: Sr, location: string): Promise<Row> {
  const row = await lvInfo(sr, lvOf(location));
  if (!row) throw new PluginError(Codes.VDI_MISSING, `volume ${location} is not in ${sr.vg}`);
  return row;
}

function describe(row: Row) {
  const size = num(row.lv_size);
  const used = row.pool_lv ? Math.round((size * (Number.parseFloat(row.data_percent ?? '0') || 0)) / 100) : size;
  return { virtual_size: size, physical_utilisation: used };
}

async function vgFigures(sr: Sr) {
  const [vg] = await report(sr.dev, 'vgs', 'vg_size,vg_free,vg_extent_size', [sr.vg]);
  const pool = await lvInfo(sr, POOL);
  const size = num(vg?.vg_size);
  const free = num(vg?.vg_free);
  const extent = num(vg?.vg_extent_size) || 4 * 1024 * 1024;
  let used = size - free;
  let poolFree: number | undefined;
  if (pool) {
    const poolSize = num(pool.lv_size);
    const poolUsed = Math.round((poolSize * (Number.parseFloat(pool.data_percent ?? '0') || 0)) / 100);
    used = used - poolSize + poolUsed;
    poolFree = poolSize - poolUsed;
  }
  return { size, used, free, extent, poolFree };
}

function mounted(dev: string): boolean {
  let real = dev;
  try {
    real = realpathSync(dev);
  } catch {
    /* keep the name */
  }
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => {
    const src = l.split(' ')[0];
    return src === dev || src === real;
  });
}

async function branch(req: Request) {
  const sr = await openSr(req);
  const origin = await existingLv(sr, requireVdi(req).location);
  const newUuid = String(req.args.new_uuid ?? '');
  if (!UUID.test(newUuid)) throw new PluginError(Codes.INVALID_CONFIG, `new_uuid ${newUuid} is not a uuid`);
  const lv = `LV-${newUuid}`;
  // A thin snapshot: no size, shares the origin's blocks, activates like any volume (-kn).
  await lvm(sr.dev, 'lvcreate', ['-s', '-kn', '-n', lv, `${sr.vg}/${origin.lv_name}`]);
  const row = await existingLv(sr, lv);
  return { location: lv, ...describe(row), origin: describe(await existingLv(sr, origin.lv_name!)) };
}

async function resize(req: Request) {
  const sr = await openSr(req);
  const row = await existingLv(sr, requireVdi(req).location);
  const f = await vgFigures(sr);
  const size = roundUp(intArg(req, 'new_size'), f.extent);
  const current = num(row.lv_size);
  if (size < current) throw new PluginError(Codes.INVALID_SIZE, `shrinking a disk is not supported (${current} to ${size} bytes)`);
  if (size > current) {
    const room = f.poolFree ?? f.free;
    if (size - current > room) throw new PluginError(Codes.NO_SPACE, 'not enough free space in the SR', [String(size), String(current + room)]);
    await lvm(sr.dev, 'lvresize', ['-q', '-L', `${size}b`, `${sr.vg}/${row.lv_name}`]);
  }
  return describe(await existingLv(sr, row.lv_name!));
}

await serve({
  async sr_probe(req) {
    const dev = deviceOf(req.args.device_config as Record<string, string>);
    const rows = await report(dev, 'pvs', 'pv_name,vg_name,vg_size', [dev], true);
    return {
      srs: rows
        .filter((r) => r.vg_name?.startsWith(VG_PREFIX) && UUID.test(r.vg_name.slice(VG_PREFIX.length)))
        .map((r) => ({ uuid: r.vg_name!.slice(VG_PREFIX.length), Devlist: dev, size: String(num(r.vg_size)) })),
    };
  },

  async sr_create(req) {
    const sr = requireSr(req);
    const dev = deviceOf(sr.device_config);
    const vg = vgName(sr.uuid);
    if (mounted(dev)) throw new PluginError(Codes.DEVICE_IN_USE, `${dev} is mounted`);
    const pv = await report(dev, 'pvs', 'pv_name,vg_name', [dev], true);
    if (pv.length > 0) {
      if (pv[0]!.vg_name === vg) return {};
      throw new PluginError(Codes.SR_EXISTS, `${dev} is already an LVM physical volume${pv[0]!.vg_name ? ` of volume group ${pv[0]!.vg_name}` : ''}`);
    }
    // Refuse a device that holds anything (a filesystem, a partition table...).
    const sig = await run('blkid', ['-p', '-o', 'export', dev], { allowFail: true });
    if (sig.code === 0) throw new PluginError(Codes.DEVICE_IN_USE, `${dev} is not empty: ${sig.stdout.trim().replace(/\n/g, ' ')}`);
    await lvm(dev, 'pvcreate', ['-q', dev]);
    try {
      await lvm(dev, 'vgcreate', ['-q', '--addtag', 'xapid_sr', vg, dev]);
    } catch (e) {
      await lvm(dev, 'pvremove', ['-q', dev], true);
      throw e;
    }
    return {};
  },

  async sr_delete(req) {
    const sr = await openSr(req);
    await lvm(sr.dev, 'vgremove', ['-q', '-f', sr.vg]);
    await lvm(sr.dev, 'pvremove', ['-q', sr.dev]);
    return {};
  },

  async sr_attach(req) {
    await openSr(req);
    return {};
  },

  async sr_detach(req) {
    const sr = await openSr(req);
    await lvm(sr.dev, 'vgchange', ['-q', '-an', sr.vg]);
    return {};
  },

  async sr_stat(req) {
    const f = await vgFigures(await openSr(req));
    return { physical_size: f.size, physical_utilisation: f.used };
  },

  async sr_scan(req) {
    const sr = await openSr(req);
    const rows = await report(sr.dev, 'lvs', 'lv_name,lv_size,data_percent,pool_lv', [sr.vg]);
    const vdis = rows.filter((r) => LV.test(r.lv_name ?? '')).map((r) => ({ uuid: LV.exec(r.lv_name!)![1], location: r.lv_name, ...describe(r) }));
    const f = await vgFigures(sr);
    return { vdis, physical_size: f.size, physical_utilisation: f.used };
  },

  async vdi_create(req) {
    const sr = await openSr(req);
    const vdi = requireVdi(req);
    if (!UUID.test(vdi.uuid)) throw new PluginError(Codes.INVALID_CONFIG, `${vdi.uuid} is not a uuid`);
    let f = await vgFigures(sr);
    const size = roundUp(intArg(req, 'virtual_size'), f.extent);
    if (size <= 0) throw new PluginError(Codes.INVALID_SIZE, 'virtual_size must be positive');
    const room = f.poolFree ?? Math.floor((f.free * 0.9) / f.extent) * f.extent;
    if (size > room) throw new PluginError(Codes.NO_SPACE, 'not enough free space in the SR', [String(size), String(room)]);
    if (f.poolFree === undefined) {
      await lvm(sr.dev, 'lvcreate', ['-q', '--type', 'thin-pool', '-l', '90%FREE', '-n', POOL, sr.vg]);
      f = await vgFigures(sr);
    }
    const lv = `LV-${vdi.uuid}`;
    await lvm(sr.dev, 'lvcreate', ['-q', '-T', `${sr.vg}/${POOL}`, '-V', `${size}b`, '-n', lv]);
    return { location: lv, ...describe(await existingLv(sr, lv)) };
  },

  async vdi_delete(req) {
    const sr = await openSr(req);
    const lv = lvOf(requireVdi(req).location);
    if (await lvInfo(sr, lv)) await lvm(sr.dev, 'lvremove', ['-q', '-f', `${sr.vg}/${lv}`]);
    return {};
  },

  vdi_clone: branch,
  vdi_snapshot: branch,

  vdi_resize: resize,
  // Growing a thin volume is safe while a VM uses it; the guest sees the new size on its next look.
  vdi_resize_online: resize,

  async vdi_introduce(req) {
    const sr = await openSr(req);
    const row = await existingLv(sr, requireVdi(req).location);
    return { location: row.lv_name, ...describe(row) };
  },

  async vdi_stat(req) {
    const sr = await openSr(req);
    return describe(await existingLv(sr, requireVdi(req).location));
  },

  async vdi_attach(req) {
    const sr = await openSr(req);
    const row = await existingLv(sr, requireVdi(req).location);
    await lvm(sr.dev, 'lvchange', ['-q', '-ay', '-K', `${sr.vg}/${row.lv_name}`]);
    return { path: `/dev/${sr.vg}/${row.lv_name}`, format: 'raw', read_only: req.args.writable !== true };
  },

  async vdi_detach(req) {
    const sr = await openSr(req);
    const lv = lvOf(requireVdi(req).location);
    if (await lvInfo(sr, lv)) await lvm(sr.dev, 'lvchange', ['-q', '-an', `${sr.vg}/${lv}`]);
    return {};
  },
});
