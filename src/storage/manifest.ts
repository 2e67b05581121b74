// Storage plugins on disk: each SR type is a folder with a manifest.json and the
// executable it names. The daemon finds them at start in the folders of
// $XAPID_SM_PLUGIN_PATH (colon-separated, searched first) and in the storage-plugins
// folder of its own installation; the first folder that offers a type wins.
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

/** The plugin protocol version this daemon speaks; a plugin needs the same major number. */
export const SM_API_VERSION = '1.0';

/** Capability names as xapi knows them; others in a manifest are ignored. */
export const CAPABILITIES = [
  'SR_PROBE', 'SR_UPDATE', 'VDI_CREATE', 'VDI_DELETE', 'VDI_ATTACH', 'VDI_DETACH', 'VDI_RESIZE', 'VDI_RESIZE_ONLINE',
  'VDI_CLONE', 'VDI_SNAPSHOT', 'VDI_ACTIVATE', 'VDI_DEACTIVATE', 'VDI_UPDATE', 'VDI_INTRODUCE', 'VDI_GENERATE_CONFIG',
] as const;

export interface Manifest {
  type: string;
  name: string;
  description: string;
  vendor: string;
  copyright: string;
  version: string;
  required_api_version: string;
  capabilities: string[];
  /** device_config keys and a line on each. */
  configuration: Record<string, string>;
  /** content_type given to SRs of this type when SR.create leaves it empty. */
  content_type: string;
  /** Absolute path of the executable. */
  exec: string;
  timeoutMs: number;
  /** Snapshots of a disk in use by a running VM are safe (the storage handles it). */
  live_snapshot: boolean;
  /** vdi_attach only looks the path up and vdi_detach does nothing: the daemon may skip both
   * for its own short uses (VDI.copy), taking the path vdi_create returns. */
  attach_is_lookup: boolean;
  dir: string;
}

export const builtinPluginDir = fileURLToPath(new URL('../../../storage-plugins/', import.meta.url));

export function pluginDirs(): string[] {
  const extra = (process.env.XAPID_SM_PLUGIN_PATH ?? '').split(':').filter(Boolean);
  return [...extra, builtinPluginDir];
}

const str = (v: unknown, d = '') => (typeof v === 'string' ? v : d);

/** Reads and checks one plugin folder; throws with the reason when it is not usable. */
export function loadManifest(dir: string): Manifest {
  const j = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const type = str(j.type);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(type)) throw new Error(`type "${type}" must be lower-case letters, digits, - or _`);
  const required = str(j.required_api_version, SM_API_VERSION);
  if (required.split('.')[0] !== SM_API_VERSION.split('.')[0]) throw new Error(`needs plugin API ${required}, this daemon speaks ${SM_API_VERSION}`);
  const execName = str(j.exec);
  if (!execName) throw new Error('manifest names no exec');
  const exec = path.resolve(dir, execName);
  accessSync(exec, constants.X_OK);
  const caps = Array.isArray(j.capabilities) ? j.capabilities.filter((c): c is string => typeof c === 'string') : [];
  const config: Record<string, string> = {};
  if (j.configuration && typeof j.configuration === 'object') {
    for (const [k, v] of Object.entries(j.configuration as Record<string, unknown>)) config[k] = str(v);
  }
  const timeout = typeof j.timeout_seconds === 'number' && j.timeout_seconds > 0 ? j.timeout_seconds : 120;
  return {
    type,
    name: str(j.name, type),
    description: str(j.description),
    vendor: str(j.vendor),
    copyright: str(j.copyright),
    version: str(j.version),
    required_api_version: required,
    capabilities: caps.filter((c) => (CAPABILITIES as readonly string[]).includes(c)),
    configuration: config,
    content_type: str(j.content_type),
    exec,
    timeoutMs: timeout * 1000,
    live_snapshot: j.live_snapshot === true,
    attach_is_lookup: j.attach_is_lookup === true,
    dir,
  };
}

export function discoverPlugins(dirs: string[], log: Logger): Map<string, Manifest> {
  const found = new Map<string, Manifest>();
  for (const root of dirs) {
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root).sort()) {
      const dir = path.join(root, name);
      if (!statSync(dir).isDirectory() || !existsSync(path.join(dir, 'manifest.json'))) continue;
      try {
        const m = loadManifest(dir);
        if (found.has(m.type)) {
          log.info({ type: m.type, dir, using: found.get(m.type)!.dir }, 'storage plugin type already provided: skipped');
          continue;
        }
        found.set(m.type, m);
      } catch (e) {
        log.warn({ dir, err: (e as Error).message }, 'storage plugin not usable: skipped');
      }
    }
  }
  return found;
}
