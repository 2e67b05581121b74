#!/usr/bin/env node
// xapid's command line: parse the flags, start the daemon, stop cleanly on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startDaemon, type Config } from './daemon.js';
import { SchemaTooNewError } from './db/migrate.js';
import { NETWORK_MODES, type NetworkMode } from './network/namespace.js';

const HELP = `Usage: xapid [options]

A XenAPI toolstack daemon. Runs in the foreground; all state lives in the state directory.

Options:
  --state-dir DIR             where the database, certificate and keys live (default: ./xapid-state,
                              or $XAPID_STATE_DIR)
  --listen HOST:PORT          plain HTTP listener (default 127.0.0.1:8080; "none" to disable)
  --https-listen HOST:PORT    HTTPS listener; a self-signed certificate is made on first use
  --tls-cert FILE --tls-key FILE
                              use this certificate and key for HTTPS instead
  --unix-socket PATH          local-administration socket (repeatable); calls on it log in
                              without a password, as on xapi's /var/lib/xcp/xapi
  --root-password-file FILE   root's password on the first start (or $XAPID_ROOT_PASSWORD)
  --session-timeout SECONDS   idle time after which a session expires (default 86400)
  --max-sessions-per-user N   oldest idle sessions of a user expire past this (default 200)
  --auth-failure-delay MS     pause before answering a failed login (default 2000)
  --body-limit BYTES          largest request body accepted (default 16777216)
  --task-ttl SECONDS          finished tasks are removed this long after anyone last looked
                              (default 3600)
  --gc-interval SECONDS       time between housekeeping passes: session expiry, task
                              and event-log sweeps (default 30)
  --network-mode MODE         where network changes (bridges, VLANs, bonds, addresses) happen:
                                namespace  inside a network namespace xapid owns (xapid-<hash of
                                           the state dir>), whose stand-in NICs play the physical
                                           ones; removed when xapid stops. The default with the
                                           simulator.
                                host       on this machine's own interfaces: for a Xen host that
                                           xapid manages. The default with the xl driver.
                                none       in the database only
                              Without the rights to make a namespace, xapid says so and uses none.
  --netns NAME                with --network-mode namespace: use this existing namespace (its
                              NICs carry the alias "xapid:nic"); xapid never deletes it
  --sim-nics N                stand-in NICs made on a first start in namespace/none mode (default 2)
  --driver sim|xl|auto        hypervisor driver: xl drives real Xen (xl, xenstore-*); sim is the
                              built-in simulator; auto (the default) takes xl when /proc/xen and an
                              xl binary exist, else the simulator, and says which in the log
  --sim-delay-scale F         the simulator's timings: 1 realistic (default), 0 no delay at all
  --shutdown-timeout SECONDS  how long a clean shutdown, reboot or suspend may take (default 1200)
  --crash-guard SECONDS       a guest that crashes this soon after starting is not restarted
                              (default 120, as xapi)
  --reboot-guard SECONDS      a guest that restarts this soon after starting is restarted after a
                              growing delay (default 60, as xapi)
  --log-level LEVEL           fatal, error, warn, info, debug or trace (default info)
  -h, --help                  print this help
`;

function config(argv: string[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      'state-dir': { type: 'string' },
      listen: { type: 'string' },
      'https-listen': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'unix-socket': { type: 'string', multiple: true },
      'root-password-file': { type: 'string' },
      'session-timeout': { type: 'string' },
      'max-sessions-per-user': { type: 'string' },
      'auth-failure-delay': { type: 'string' },
      'body-limit': { type: 'string' },
      'task-ttl': { type: 'string' },
      'gc-interval': { type: 'string' },
      'log-level': { type: 'string' },
      'network-mode': { type: 'string' },
      netns: { type: 'string' },
      'sim-nics': { type: 'string' },
      driver: { type: 'string' },
      'sim-delay-scale': { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      'crash-guard': { type: 'string' },
      'reboot-guard': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const num = (v: string | undefined, d: number, name: string) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} takes a non-negative number, not "${v}"`);
    return n;
  };
  const listen = values.listen ?? '127.0.0.1:8080';
  const networkMode = values['network-mode'] as NetworkMode | undefined;
  if (networkMode !== undefined && !NETWORK_MODES.includes(networkMode)) {
    throw new Error(`--network-mode takes ${NETWORK_MODES.join(', ')}, not "${networkMode}"`);
  }
  if (values.netns !== undefined && (networkMode ?? 'namespace') !== 'namespace') throw new Error('--netns goes with --network-mode namespace');
  const simNics = num(values['sim-nics'], 2, 'sim-nics');
  if (!Number.isInteger(simNics) || simNics > 64) throw new Error(`--sim-nics takes a whole number up to 64, not "${values['sim-nics']}"`);
  const driver = values.driver ?? 'auto';
  if (driver !== 'auto' && driver !== 'sim' && driver !== 'xl') throw new Error(`--driver takes sim, xl or auto, not "${driver}"`);
  return {
    stateDir: values['state-dir'] ?? process.env.XAPID_STATE_DIR ?? './xapid-state',
    listen: listen === 'none' ? undefined : listen,
    httpsListen: values['https-listen'],
    unixSockets: values['unix-socket'] ?? [],
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    rootPasswordFile: values['root-password-file'],
    logLevel: values['log-level'] ?? 'info',
    sessionTimeoutSec: num(values['session-timeout'], 86400, 'session-timeout'),
    maxSessionsPerUser: num(values['max-sessions-per-user'], 200, 'max-sessions-per-user'),
    authFailureDelayMs: num(values['auth-failure-delay'], 2000, 'auth-failure-delay'),
    bodyLimit: num(values['body-limit'], 16 * 1024 * 1024, 'body-limit'),
    taskTtlSec: num(values['task-ttl'], 3600, 'task-ttl'),
    gcIntervalSec: Math.max(0.05, num(values['gc-interval'], 30, 'gc-interval')),
    networkMode,
    netns: values.netns,
    simNics,
    driver,
    simDelayScale: num(values['sim-delay-scale'], 1, 'sim-delay-scale'),
    shutdownTimeoutSec: Math.max(0.1, num(values['shutdown-timeout'], 1200, 'shutdown-timeout')),
    crashGuardSec: num(values['crash-guard'], 120, 'crash-guard'),
    rebootGuardSec: num(values['reboot-guard'], 60, 'reboot-guard'),
  };
}

async function main(): Promise<void> {
  let cfg: Config | undefined;
  try {
    cfg = config(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`xapid: ${(e as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (!cfg) {
    process.stdout.write(HELP);
    return;
  }
  const log = pino({ level: cfg.logLevel });
  let running;
  try {
    running = await startDaemon(cfg, log);
  } catch (e) {
    log.fatal({ err: e }, e instanceof SchemaTooNewError ? e.message : 'xapid could not start');
    process.exit(1);
  }
  log.info({ urls: running.urls, stateDir: cfg.stateDir }, 'xapid ready: log in as root with session.login_with_password');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await running.stop();
    process.exit(0);
  };
  // For test harnesses: stop when the process that started us is gone (we were reparented).
  if (process.env.XAPID_EXIT_WITH_PARENT === '1') {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) void stop('parent exited');
    }, 500).unref();
  }
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
