"""Drives xapid with the classic XenAPI.py (Debian's python3-os-xenapi) and prints what
it saw as JSON.

Usage: xenapi_module.py tcp URL PASSWORD
       xenapi_module.py unix SOCKET_PATH      (the path must not contain '_')
"""
import json
import sys
import xmlrpc.client as xc

from os_xenapi.client import XenAPI

out = {}
mode = sys.argv[1]

if mode == 'tcp':
    url, password = sys.argv[2], sys.argv[3]
    session = XenAPI.Session(url)
else:
    sock, password = sys.argv[2], ''
    assert '_' not in sock, 'UDSTransport turns every "_" of the host into "/"'
    transport = XenAPI.UDSTransport()
    # On Python 3 the module's UDSTransport.send_request has the Python 2 signature
    # (connection, handler, body) and xmlrpc.client calls it with (host, handler, body,
    # verbose): a TypeError before anything reaches the socket. Use it as shipped if it
    # works; otherwise keep its Unix-socket connection and restore the standard
    # send_request (what upstream xen-api's XenAPI.py does), and say so.
    try:
        XenAPI.Session('http://' + sock.replace('/', '_'), transport=transport).xenapi.login_with_password('root', '')
        out['uds_transport_as_shipped'] = 'works'
    except TypeError as e:
        out['uds_transport_as_shipped'] = 'TypeError: %s' % e

        class FixedUDSTransport(XenAPI.UDSTransport):
            send_request = xc.Transport.send_request

        transport = FixedUDSTransport()
    session = XenAPI.Session('http://' + sock.replace('/', '_'), transport=transport)

x = session.xenapi

# A wrong password: the module raises Failure with the ErrorDescription as details.
if mode == 'tcp':
    try:
        XenAPI.Session(url).xenapi.login_with_password('root', 'wrong-password')
        out['bad_login'] = 'no exception'
    except XenAPI.Failure as f:
        out['bad_login'] = f.details

# login_with_password also calls pool.get_all, pool.get_master and
# host.get_API_version_major/minor to fill session.API_version.
x.login_with_password('root', password)
out['handle'] = session.handle
out['api_version'] = session.API_version

pool = x.pool.get_all()[0]
out['pool_record_keys'] = sorted(x.pool.get_record(pool).keys())
master = x.pool.get_master(pool)
host = x.host.get_record(master)
out['host'] = {k: host[k] for k in ('name_label', 'API_version_major', 'API_version_minor', 'API_version_vendor', 'enabled')}
out['host_software_version_type'] = type(host['software_version']).__name__
vms = x.VM.get_all_records()
out['vms'] = {ref: {'name_label': r['name_label'], 'power_state': r['power_state'], 'is_control_domain': r['is_control_domain'],
                    'memory_static_max': r['memory_static_max']} for ref, r in vms.items() if r['is_control_domain']}
out['vm_count'] = len(vms)
out['vm_by_uuid'] = [x.VM.get_by_uuid(r['uuid']) == ref for ref, r in vms.items()]
out['host_by_label'] = x.host.get_by_name_label(host['name_label']) == [master]

bad = 'OpaqueRef:00000000-0000-0000-0000-00000000dead'
try:
    x.VM.get_record(bad)
    out['handle_invalid'] = 'no exception'
except XenAPI.Failure as f:
    out['handle_invalid'] = f.details
    out['handle_invalid_str'] = str(f)
try:
    x.VM.no_such_message()
    out['unknown'] = 'no exception'
except XenAPI.Failure as f:
    out['unknown'] = f.details

# The module logs in again by itself when a call answers SESSION_INVALID.
first = session.handle
getattr(session, 'session.logout')(first)
out['relogin_pools'] = x.pool.get_all() == [pool]
out['relogin_new_handle'] = session.handle != first
out['first_handle'] = first

last = session.handle
x.logout()
out['handle_after_logout'] = session.handle
out['last_handle'] = last
json.dump(out, sys.stdout)
