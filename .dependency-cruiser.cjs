// The layering rules of docs/architecture.md, checked by test/architecture.test.ts
// (and by hand: npx depcruise src drivers storage-plugins). Dependencies point down:
// rpc/ → api/ → services → db/, core/, datamodel/, drivers/.
const services = 'vm|network|storage|tasks|events|auth|host|pool';
/** What sits above the services: the API layer, the front ends and the entry points. */
const above = 'api|rpc|http';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import cycles, type-only imports included: a cycle means two modules are one job or the layering is wrong.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'services-below-api',
      severity: 'error',
      comment: 'A service never imports the API layer or the front ends: where one service needs another\'s work it calls that service.',
      from: { path: `^src/(${services})/` },
      to: { path: `^src/(${above})/` },
    },
    {
      name: 'api-below-rpc',
      severity: 'error',
      comment: 'Handlers do not know the wire formats or the HTTP server.',
      from: { path: '^src/api/' },
      to: { path: '^src/(rpc|http)/' },
    },
    {
      name: 'foundations-below-services',
      severity: 'error',
      comment: 'core/ (errors, operation locking, call context), db/ and datamodel/ sit below every service: they import none of it, nor anything above.',
      from: { path: '^src/(core|db|datamodel)/' },
      to: { path: `^src/((${above}|${services})/|daemon\\.ts|main\\.ts)` },
    },
    {
      name: 'drivers-and-plugins-stand-alone',
      severity: 'error',
      comment: 'Hypervisor drivers and storage plugins are below the daemon: they never import its src/.',
      from: { path: '^(drivers|storage-plugins)/' },
      to: { path: '^src/' },
    },
    {
      name: 'only-the-entry-wires',
      severity: 'error',
      comment: 'daemon.ts is the one place that constructs and wires services; nothing but main.ts (and tests) imports it.',
      from: { path: '^src/', pathNot: '^src/main\\.ts$' },
      to: { path: '^src/(daemon|main)\\.ts$' },
    },
  ],
  options: {
    // Type-only imports count: they are how layers leak (the Daemon type in every service, once).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|test)/' },
    moduleSystems: ['es6', 'cjs'],
  },
};
