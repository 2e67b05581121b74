// The plugin side of the xapid storage-plugin protocol (see storage-plugins/README.md):
// read one JSON request from stdin, run the command, print one JSON answer on stdout.
// Shared by the plugins written in TypeScript; a plugin in another language only needs
// to follow the README.
import { spawn } from 'node:child_process';

export const PROTOCOL_VERSION = '1.0';

/** Error codes a plugin answers with. The daemon turns some into specific XenAPI errors. */
export const Codes = {
  /** The command is not implemented by this SR type. */
  NOT_SUPPORTED: 38,
  /** The SR still holds VDIs where it must be empty. */
  SR_NOT_EMPTY: 39,
  /** The VDI is in use (e.g. open by another process). */
  VDI_IN_USE: 24,
  /** The device under the SR is in use by something else. */
  DEVICE_IN_USE: 16,
  /** An SR already exists on this device or location. */
  SR_EXISTS: 42,
  /** Not enough space; params: [requested bytes, maximum bytes]. */
  NO_SPACE: 44,
  /** The SR's storage cannot be reached (location or device absent, marker missing). */
  SR_UNAVAILABLE: 47,
  /** device_config lacks `device`. */
  DEVICE_MISSING: 90,
  /** device_config lacks `location`. */
  LOCATION_MISSING: 94,
  /** The VDI's image is not in the SR. */
  VDI_MISSING: 144,
  /** A size the SR cannot honour (e.g. shrinking). */
  INVALID_SIZE: 1001,
  /** A tool the plugin runs (qemu-img, lvm) failed; the message carries its output. */
  TOOL_FAILED: 1002,
  /** A device_config value is present but not usable (e.g. not a block device). */
  INVALID_CONFIG: 1003,
} as const;

export class PluginError extends Error {
  constructor(readonly code: number, message: string, readonly params: string[] = []) {
    super(message);
  }
}

export interface SrInfo {
  uuid: string;
  device_config: Record<string, string>;
  sm_config: Record<string, string>;
}

export interface VdiInfo {
  uuid: string;
  location: string;
  sm_config: Record<string, string>;
}

export interface Request {
  api_version: string;
  command: string;
  host_uuid: string;
  /** Absent for sr_probe, which gets `device_config` in args instead. */
  sr?: SrInfo;
  vdi?: VdiInfo;
  args: Record<string, unknown>;
}

export type CommandHandler = (req: Request) => Promise<unknown> | unknown;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function answer(obj: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(obj)}\n`, () => resolve()));
}

/** Runs one request: the plugin's whole life. Unknown commands answer NOT_SUPPORTED. */
export async function serve(commands: Record<string, CommandHandler>): Promise<void> {
  let req: Request;
  const text = await readStdin();
  // Started ahead of need by a daemon that then went away: nothing to do.
  if (text.trim() === '') return;
  try {
    req = JSON.parse(text) as Request;
  } catch (e) {
    process.stderr.write(`bad request: ${(e as Error).message}\n`);
    process.exit(2);
  }
  req.args ??= {};
  const handler = Object.hasOwn(commands, req.command) ? commands[req.command] : undefined;
  try {
    if (!handler) throw new PluginError(Codes.NOT_SUPPORTED, `command ${req.command} is not supported by this SR type`);
    const result = await handler(req);
    await answer({ status: 'ok', result: result ?? {} });
  } catch (e) {
    if (e instanceof PluginError) {
      await answer({ status: 'error', code: e.code, message: e.message, params: e.params });
    } else {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  }
}

export interface RunResult { stdout: string; stderr: string; code: number }

/** Runs a tool; a non-zero exit becomes TOOL_FAILED with the command line and its stderr. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => reject(new PluginError(Codes.TOOL_FAILED, `cannot run ${cmd}: ${e.message}`)));
    p.on('close', (code) => {
      const r = { stdout, stderr, code: code ?? -1 };
      if (r.code !== 0 && !opts.allowFail) {
        reject(new PluginError(Codes.TOOL_FAILED, `${cmd} ${args.join(' ')} failed (exit ${r.code}): ${stderr.trim() || stdout.trim()}`));
      } else resolve(r);
    });
  });
}

export function requireSr(req: Request): SrInfo {
  if (!req.sr) throw new PluginError(Codes.SR_UNAVAILABLE, `command ${req.command} needs an SR`);
  return req.sr;
}

export function requireVdi(req: Request): VdiInfo {
  if (!req.vdi) throw new PluginError(Codes.VDI_MISSING, `command ${req.command} needs a VDI`);
  return req.vdi;
}

export function intArg(req: Request, name: string): number {
  const v = req.args[name];
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new PluginError(Codes.INVALID_SIZE, `argument ${name} must be an integer`);
  return n;
}

export const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;
