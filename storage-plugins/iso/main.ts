// The `iso` SR type: a read-only library over a directory of ISO images. Every *.iso or
// *.img file in the directory is a VDI (location = the file name); the plugin never
// writes to the directory, and destroying the SR leaves the files where they are.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Codes, PluginError, requireSr, requireVdi, serve, type Request } from '../lib/protocol.js';
import { allocated, checkDir, fsFigures } from '../lib/fsinfo.js';

const ISO = /^[^/]+\.(iso|img)$/i;

function locationOf(dc: Record<string, string> | undefined): string {
  const l = dc?.location;
  if (!l) throw new PluginError(Codes.LOCATION_MISSING, 'The request is missing the location parameter');
  const dir = path.resolve(l);
  checkDir(dir);
  return dir;
}

const dirOf = (req: Request) => locationOf(requireSr(req).device_config);

function image(dir: string, location: string): string {
  if (!ISO.test(location) || location.startsWith('.')) throw new PluginError(Codes.VDI_MISSING, `${location} is not an ISO image name`);
  const p = path.join(dir, location);
  let st;
  try {
    st = statSync(p);
  } catch {
    throw new PluginError(Codes.VDI_MISSING, `${location} is not in ${dir}`);
  }
  if (!st.isFile()) throw new PluginError(Codes.VDI_MISSING, `${location} is not a file`);
  return p;
}

const describe = (p: string) => ({ virtual_size: statSync(p).size, physical_utilisation: allocated(p) });

await serve({
  sr_create(req) {
    dirOf(req);
    return {};
  },
  sr_delete(req) {
    dirOf(req);
    return {};
  },
  sr_attach(req) {
    dirOf(req);
    return {};
  },
  sr_detach() {
    return {};
  },
  sr_stat(req) {
    const f = fsFigures(dirOf(req));
    return { physical_size: f.size, physical_utilisation: f.used };
  },
  sr_scan(req) {
    const dir = dirOf(req);
    const vdis = [];
    for (const f of readdirSync(dir).sort()) {
      if (!ISO.test(f) || f.startsWith('.')) continue;
      try {
        vdis.push({ location: f, name_label: f, read_only: true, ...describe(image(dir, f)) });
      } catch {
        // A directory named *.iso, or a file that vanished meanwhile.
      }
    }
    const f = fsFigures(dir);
    return { vdis, physical_size: f.size, physical_utilisation: f.used };
  },
  vdi_introduce(req) {
    const dir = dirOf(req);
    const loc = requireVdi(req).location;
    return { location: loc, read_only: true, ...describe(image(dir, loc)) };
  },
  vdi_stat(req) {
    return describe(image(dirOf(req), requireVdi(req).location));
  },
  vdi_attach(req) {
    if (req.args.writable === true) throw new PluginError(Codes.INVALID_CONFIG, 'ISO images can only be attached read-only');
    return { path: image(dirOf(req), requireVdi(req).location), format: 'raw', read_only: true };
  },
  vdi_detach() {
    return {};
  },
});
