// Trailing parameters that callers may leave out. The datamodel facts list every
// parameter a message has today; those added after a message first appeared carry a
// default so that older clients' shorter calls keep working (as xapi does).
export const paramDefaults: Record<string, Record<string, unknown>> = {
  'session.login_with_password': { version: '1.1', originator: '' },
  // miami's Bond.create took (network, members, MAC); PIF.introduce had no `managed`.
  'Bond.create': { mode: 'balance-slb', properties: {} },
  'PIF.introduce': { managed: true },
  // rio's VDI.copy took (vdi, sr); miami's VDI.introduce stopped at sm_config.
  'VDI.copy': { base_vdi: 'OpaqueRef:NULL', into_vdi: 'OpaqueRef:NULL' },
  'VDI.introduce': {
    managed: true, virtual_size: 0, physical_utilisation: 0, metadata_of_pool: 'OpaqueRef:NULL',
    is_a_snapshot: false, snapshot_time: '19700101T00:00:00Z', snapshot_of: 'OpaqueRef:NULL',
  },
};
