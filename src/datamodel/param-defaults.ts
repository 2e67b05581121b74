// Trailing parameters that callers may leave out. The datamodel facts list every
// parameter a message has today; those added after a message first appeared carry a
// default so that older clients' shorter calls keep working (as xapi does).
export const paramDefaults: Record<string, Record<string, unknown>> = {
  'session.login_with_password': { version: '1.1', originator: '' },
};
