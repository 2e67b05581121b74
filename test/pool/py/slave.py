"""Drives a slave xapid with the classic XenAPI.py (Debian's python3-os-xenapi) and prints
what it saw as JSON.

Usage: slave.py URL PASSWORD
The caller (test/pool/slave.test.ts) checks the observations.
"""
import json
import sys

from os_xenapi.client import XenAPI

url, password = sys.argv[1], sys.argv[2]
out = {}

session = XenAPI.Session(url)
try:
    session.xenapi.login_with_password('root', password, '1.1', 'xapid-pool-test')
    out['login'] = 'no exception'
except XenAPI.Failure as f:
    out['login'] = f.details
    out['login_str'] = str(f)

# The emergency login works on a slave; the module then probes the API version with it.
session.slave_local_login_with_password('root', password)
out['local_handle'] = session.handle
out['api_version'] = session.API_version
out['hosts'] = len(session.xenapi.host.get_all())
# The module logs a slave_local session out with session.local_logout.
session.xenapi.logout()
out['handle_after_logout'] = session.handle
json.dump(out, sys.stdout)
