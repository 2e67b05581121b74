// The layering rules of docs/architecture.md, checked by test/architecture.test.ts
// (and by hand: npx depcruise src drivers storage-plugins). Dependencies point down:
// rpc/ → api/ → services → db/, core/, datamodel/, drivers/.
const services = '(vm|network|storage|tasks|events|auth|host|pool)';

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
      comment: 'A service never imports the API layer or the RPC front end: where one service needs another\'s work it calls that service.',
      from: { path: `^src/(${services.slice(1, -1)}|core|db|datamodel)/` },
      to: { path: '^src/(api|rpc)/' },
    },
    {
      name: 'api-below-rpc',
      severity: 'error',
      comment: 'Handlers do not know the wire formats or the HTTP server.',
      from: { path: '^src/api/' },
      to: { path: '^src/rpc/' },
    },
    {
      name: 'core-at-the-bottom',
      severity: 'error',
      comment: 'core/ (errors, operation locking, call context) sits below every service; it may use the store and the datamodel only.',
      from: { path: '^src/core/' },
      to: { path: `^src/(api|rpc|${services.slice(1, -1)}|daemon\\.ts|main\\.ts)` },
    },
    {
      name: 'db-below-services',
      severity: 'error',
      comment: 'The object store knows the datamodel and core/, not the services that use it.',
      from: { path: '^src/(db|datamodel)/' },
      to: { path: `^src/(api|rpc|${services.slice(1, -1)}|daemon\\.ts|main\\.ts)` },
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
