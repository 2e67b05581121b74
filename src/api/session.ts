// session: log in and out, the local (emergency) login, password change.
import type { ApiContext, Handler } from './context.js';
import { fail } from '../core/errors.js';

export const sessionHandlers: Record<string, Handler> = {
  async login_with_password(ctx: ApiContext, uname: string, pwd: string, _version: string, originator: string) {
    // The local Unix socket is root's own door, as xapi's is: no password check there.
    return ctx.daemon.sessions.login(uname, pwd, originator, { trusted: ctx.transport === 'unix' });
  },

  async slave_local_login_with_password(ctx: ApiContext, uname: string, pwd: string) {
    return ctx.daemon.sessions.login(uname, pwd, '', { trusted: false, localOnly: true });
  },

  logout(ctx: ApiContext) {
    ctx.daemon.sessions.destroy(ctx.session!);
  },

  local_logout(ctx: ApiContext) {
    if (ctx.daemon.sessions.isLocalOnly(ctx.session!)) ctx.daemon.sessions.destroy(ctx.session!);
  },

  async change_password(ctx: ApiContext, _old: string, newPwd: string) {
    // As xapi: only root's sessions may, the old password is not rechecked, and it is root's that changes.
    const who = ctx.daemon.sessions.check(ctx.session, 'session.change_password').uname;
    if (who !== 'root') fail('USER_IS_NOT_LOCAL_SUPERUSER', 'Failed to change password for user root');
    if (newPwd.length === 0) fail('CHANGE_PASSWORD_REJECTED', 'the new password is empty');
    await ctx.daemon.sessions.setPassword('root', newPwd);
  },
};
