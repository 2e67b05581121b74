"""Drives xapid with Python's standard xmlrpc.client only, and prints what it saw as JSON.

Usage: stdlib_xmlrpc.py URL PASSWORD
The caller (test/clients/python.test.ts) checks the observations; this script only
fails by itself if the client library raises something unexpected.
"""
import json
import sys
import xmlrpc.client as xc

url, password = sys.argv[1], sys.argv[2]
out = {}


def kind(v):
    """The Python type xmlrpc.client decoded a value to."""
    return type(v).__name__


def value(r):
    assert isinstance(r, dict) and r.get('Status') == 'Success', r
    return r['Value']


for path in ('', '/', '/RPC2'):
    p = xc.ServerProxy(url + path)
    r = p.session.login_with_password('root', password, '1.1', 'python-xmlrpc')
    out.setdefault('login', []).append({'path': path, 'status': r['Status'], 'value': r.get('Value')})

p = xc.ServerProxy(url)
s = value(p.session.login_with_password('root', password))
pools = value(p.pool.get_all(s))
out['pools'] = pools
pool = pools[0]
master = value(p.pool.get_master(s, pool))
out['api_version'] = [value(p.host.get_API_version_major(s, master)), value(p.host.get_API_version_minor(s, master))]
out['api_version_types'] = [kind(v) for v in out['api_version']]

vms = value(p.VM.get_all_records(s))
out['vm_count'] = len(vms)
# the control domain (the daemon also has templates)
ref, vm = next((r, v) for r, v in vms.items() if v['is_control_domain'])
out['vm_ref'] = ref
out['vm_field_types'] = {k: kind(vm[k]) for k in (
    'uuid', 'name_label', 'power_state', 'memory_static_max', 'VCPUs_max', 'domid', 'user_version',
    'is_a_template', 'is_control_domain', 'HVM_shadow_multiplier', 'other_config', 'VBDs', 'resident_on')}
out['vm_values'] = {k: vm[k] for k in ('memory_static_max', 'domid', 'is_a_template', 'is_control_domain', 'power_state', 'HVM_shadow_multiplier')}

sess = value(p.session.get_record(s, s))
out['last_active_type'] = kind(sess['last_active'])
out['last_active'] = str(sess['last_active'])
out['session_pool_type'] = kind(sess['pool'])
metrics = value(p.VM_metrics.get_record(s, vm['metrics']))
out['vm_metrics_types'] = {k: kind(metrics[k]) for k in ('start_time', 'install_time', 'last_updated', 'memory_actual', 'VCPUs_number', 'VCPUs_CPU')}
out['install_time'] = str(metrics['install_time'])

# A failure is a normal answer with Status=Failure, not an XML-RPC fault.
out['failure'] = p.VM.get_record(s, 'OpaqueRef:00000000-0000-0000-0000-00000000dead')
out['bad_login'] = p.session.login_with_password('root', 'wrong-password')

# Values Python sends: <int>, <struct>, <string> with markup and non-ASCII text.
value(p.VM.set_user_version(s, ref, 42))
out['user_version_after'] = value(p.VM.get_user_version(s, ref))
# a float where an int is expected is refused
out['float_for_int'] = p.VM.set_user_version(s, ref, 2.5)
value(p.pool.set_other_config(s, pool, {'from': 'python', 'n': '1'}))
out['other_config_after'] = value(p.pool.get_other_config(s, pool))
label = 'ünïcødé <b>&amp;</b> "quoted" \'single\' ✓ 𝄞'
out['label_sent'] = label
value(p.pool.set_name_label(s, pool, label))
out['label_after'] = value(p.pool.get_name_label(s, pool))
# Python bool where a string is expected: a type error, not a crash or a success
out['bool_for_string'] = p.pool.set_name_description(s, pool, True)

methods = p.system.listMethods()
out['list_methods_type'] = kind(methods)
out['list_methods_count'] = len(methods)
out['list_methods_async'] = [m for m in methods if m.startswith('Async.')]
out['list_methods_has'] = [m in methods for m in ('VM.get_all_records', 'session.login_with_password')]

out['logout'] = p.session.logout(s)
out['after_logout'] = p.pool.get_all(s)
out['session'] = s

json.dump(out, sys.stdout)
