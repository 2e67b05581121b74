// The `file` SR type: a directory on any mounted filesystem. Each VDI is a qcow2 image
// named <uuid>.qcow2; clone and snapshot turn the disk's current image into a hidden,
// read-only base (.base-*.qcow2) and put copy-on-write overlays on top of it for both
// the disk and the new VDI, so they take the same time whatever the disk's size.
// A base is removed as soon as no image uses it any more.
import { chmodSync, existsSync, linkSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, accessSync, constants, fsyncSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Codes, PluginError, intArg, requireSr, requireVdi, roundUp, run, serve, type Request } from '../lib/protocol.js';
import { readQcow2Header } from '../lib/qcow2.js';
import { allocated, checkDir, fsFigures } from '../lib/fsinfo.js';

const MARKER = '.xapid-sr.json';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IMAGE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.qcow2$/;
const BASE = /^\.base-[0-9a-f-]{36}\.qcow2$/;
const TEMP = /^\.tmp-/;
const QEMU_IMG = process.env.XAPID_QEMU_IMG ?? 'qemu-img';
/** Free space a clone or snapshot needs for the two new overlays' metadata. */
const OVERLAY_ROOM = 16 * 1024 * 1024;

function locationOf(dc: Record<string, string> | undefined): string {
  const l = dc?.location;
  if (!l) throw new PluginError(Codes.LOCATION_MISSING, 'The request is missing the location parameter');
  return path.resolve(l);
}


function readMarker(dir: string): { uuid: string } | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, MARKER), 'utf8')) as { uuid: string };
  } catch {
    return undefined;
  }
}

/** The SR's directory, after checking that it holds this SR. */
function openSr(req: Request): string {
  const sr = requireSr(req);
  const dir = locationOf(sr.device_config);
  checkDir(dir);
  const m = readMarker(dir);
  if (m?.uuid !== sr.uuid) throw new PluginError(Codes.SR_UNAVAILABLE, `no SR ${sr.uuid} at ${dir}${m ? ` (it holds SR ${m.uuid})` : ''}`);
  return dir;
}

function imagePath(dir: string, location: string): string {
  if (!IMAGE.test(location)) throw new PluginError(Codes.VDI_MISSING, `${location} is not an image of this SR`);
  return path.join(dir, location);
}

function existingImage(dir: string, location: string): string {
  const p = imagePath(dir, location);
  if (!existsSync(p)) throw new PluginError(Codes.VDI_MISSING, `image ${location} is not in ${dir}`);
  return p;
}

function describe(file: string) {
  return { virtual_size: readQcow2Header(file).virtualSize, physical_utilisation: allocated(file) };
}

function srStat(dir: string) {
  const f = fsFigures(dir);
  return { physical_size: f.size, physical_utilisation: f.used };
}

function fsync(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes leftovers of interrupted operations and every base no image uses any more. */
function collectGarbage(dir: string): void {
  for (const f of readdirSync(dir)) if (TEMP.test(f)) unlinkSync(path.join(dir, f));
  for (;;) {
    const files = readdirSync(dir);
    const used = new Set<string>();
    for (const f of files) {
      if (!IMAGE.test(f) && !BASE.test(f)) continue;
      try {
        const b = readQcow2Header(path.join(dir, f)).backingFile;
        if (b) used.add(path.basename(b));
      } catch {
        // An unreadable image keeps nothing alive but is not ours to remove.
      }
    }
    const unused = files.filter((f) => BASE.test(f) && !used.has(f));
    if (unused.length === 0) return;
    for (const f of unused) unlinkSync(path.join(dir, f));
  }
}

async function qemuImg(args: string[]): Promise<void> {
  await run(QEMU_IMG, args);
}

/** Clone and snapshot: both end with the disk and the new VDI as overlays of one base. */
async function branch(req: Request) {
  const dir = openSr(req);
  const vdi = requireVdi(req);
  const leaf = existingImage(dir, vdi.location);
  const newUuid = String(req.args.new_uuid ?? '');
  if (!UUID.test(newUuid)) throw new PluginError(Codes.INVALID_CONFIG, `new_uuid ${newUuid} is not a uuid`);
  const newLoc = `${newUuid}.qcow2`;
  const newPath = path.join(dir, newLoc);
  if (existsSync(newPath)) throw new PluginError(Codes.TOOL_FAILED, `image ${newLoc} already exists`);
  const { available } = fsFigures(dir);
  if (available < OVERLAY_ROOM) throw new PluginError(Codes.NO_SPACE, 'not enough space for the new images', [String(OVERLAY_ROOM), String(available)]);

  const baseName = `.base-${randomUUID()}.qcow2`;
  const base = path.join(dir, baseName);
  const tmpNew = path.join(dir, `.tmp-${randomUUID()}.qcow2`);
  const tmpLeaf = path.join(dir, `.tmp-${randomUUID()}.qcow2`);
  // The disk's current image becomes the base under a second name: until the final
  // rename the disk is untouched, so a crash at any step leaves it as it was.
  linkSync(leaf, base);
  let newMade = false;
  try {
    await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', baseName, tmpNew]);
    fsync(tmpNew);
    renameSync(tmpNew, newPath);
    newMade = true;
    await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', baseName, tmpLeaf]);
    fsync(tmpLeaf);
    renameSync(tmpLeaf, leaf);
  } catch (e) {
    for (const f of [tmpNew, tmpLeaf, base, ...(newMade ? [newPath] : [])]) if (existsSync(f)) unlinkSync(f);
    throw e;
  }
  chmodSync(base, 0o444);
  return { location: newLoc, ...describe(newPath), origin: describe(leaf), sr_stat: srStat(dir) };
}

await serve({
  sr_probe(req) {
    const dir = locationOf(req.args.device_config as Record<string, string>);
    checkDir(dir);
    const m = readMarker(dir);
    return { srs: m ? [{ uuid: m.uuid, size: String(fsFigures(dir).size) }] : [] };
  },

  sr_create(req) {
    const sr = requireSr(req);
    const dir = locationOf(sr.device_config);
    checkDir(dir);
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw new PluginError(Codes.SR_UNAVAILABLE, `location ${dir} is not writable`);
    }
    const m = readMarker(dir);
    if (m && m.uuid !== sr.uuid) throw new PluginError(Codes.SR_EXISTS, `location ${dir} already holds SR ${m.uuid}`);
    // Clone and snapshot rely on hard links: find out now rather than at the first snapshot.
    const probe = path.join(dir, `.tmp-${randomUUID()}`);
    writeFileSync(probe, '');
    try {
      linkSync(probe, `${probe}-link`);
      unlinkSync(`${probe}-link`);
    } catch (e) {
      throw new PluginError(Codes.INVALID_CONFIG, `the filesystem at ${dir} does not support hard links: ${(e as Error).message}`);
    } finally {
      unlinkSync(probe);
    }
    const tmp = path.join(dir, `.tmp-${randomUUID()}`);
    writeFileSync(tmp, JSON.stringify({ uuid: sr.uuid, type: 'file' }) + '\n');
    fsync(tmp);
    renameSync(tmp, path.join(dir, MARKER));
    return {};
  },

  sr_delete(req) {
    const dir = openSr(req);
    for (const f of readdirSync(dir)) {
      if (IMAGE.test(f) || BASE.test(f) || TEMP.test(f)) unlinkSync(path.join(dir, f));
    }
    unlinkSync(path.join(dir, MARKER));
    return {};
  },

  sr_attach(req) {
    collectGarbage(openSr(req));
    return {};
  },

  sr_detach() {
    return {};
  },

  sr_stat(req) {
    return srStat(openSr(req));
  },

  sr_scan(req) {
    const dir = openSr(req);
    const vdis = [];
    for (const f of readdirSync(dir).sort()) {
      const m = IMAGE.exec(f);
      if (!m) continue;
      try {
        vdis.push({ uuid: m[1], location: f, ...describe(path.join(dir, f)) });
      } catch {
        // Not a qcow2 image (or vanished meanwhile): not a VDI of this SR.
      }
    }
    const f = fsFigures(dir);
    return { vdis, physical_size: f.size, physical_utilisation: f.used };
  },

  async vdi_create(req) {
    const dir = openSr(req);
    const vdi = requireVdi(req);
    if (!UUID.test(vdi.uuid)) throw new PluginError(Codes.INVALID_CONFIG, `${vdi.uuid} is not a uuid`);
    const size = roundUp(intArg(req, 'virtual_size'), 512);
    if (size <= 0) throw new PluginError(Codes.INVALID_SIZE, 'virtual_size must be positive');
    const { available } = fsFigures(dir);
    if (size > available) throw new PluginError(Codes.NO_SPACE, 'not enough free space in the SR', [String(size), String(available)]);
    const loc = `${vdi.uuid}.qcow2`;
    const final = path.join(dir, loc);
    if (existsSync(final)) throw new PluginError(Codes.TOOL_FAILED, `image ${loc} already exists`);
    const tmp = path.join(dir, `.tmp-${randomUUID()}.qcow2`);
    try {
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1', tmp, String(size)]);
      fsync(tmp);
      renameSync(tmp, final);
    } catch (e) {
      if (existsSync(tmp)) unlinkSync(tmp);
      throw e;
    }
    return { location: loc, ...describe(final), sr_stat: srStat(dir), attach: { path: final, format: 'qcow2' } };
  },

  vdi_delete(req) {
    const dir = openSr(req);
    const p = imagePath(dir, requireVdi(req).location);
    if (existsSync(p)) unlinkSync(p);
    collectGarbage(dir);
    return { sr_stat: srStat(dir) };
  },

  vdi_clone: branch,
  vdi_snapshot: branch,

  async vdi_resize(req) {
    const dir = openSr(req);
    const p = existingImage(dir, requireVdi(req).location);
    const size = roundUp(intArg(req, 'new_size'), 512);
    const current = readQcow2Header(p).virtualSize;
    if (size < current) throw new PluginError(Codes.INVALID_SIZE, `shrinking a disk is not supported (${current} to ${size} bytes)`);
    if (size > current) {
      const { available } = fsFigures(dir);
      if (size - current > available) throw new PluginError(Codes.NO_SPACE, 'not enough free space in the SR', [String(size), String(current + available)]);
      await qemuImg(['resize', '-q', '-f', 'qcow2', p, String(size)]);
    }
    return { ...describe(p), sr_stat: srStat(dir) };
  },

  vdi_introduce(req) {
    const dir = openSr(req);
    const loc = requireVdi(req).location;
    const p = existingImage(dir, loc);
    try {
      return { location: loc, ...describe(p) };
    } catch (e) {
      throw new PluginError(Codes.VDI_MISSING, `${loc} is not a qcow2 image: ${(e as Error).message}`);
    }
  },

  vdi_stat(req) {
    const dir = openSr(req);
    return { ...describe(existingImage(dir, requireVdi(req).location)), sr_stat: srStat(dir) };
  },

  vdi_attach(req) {
    const dir = openSr(req);
    const p = existingImage(dir, requireVdi(req).location);
    return { path: p, format: 'qcow2', read_only: req.args.writable !== true };
  },

  vdi_detach() {
    return {};
  },
});
