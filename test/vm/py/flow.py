"""A VM's whole life driven by the classic XenAPI.py module (Debian's python3-os-xenapi):
clone a default template, point its disks at an SR, provision, start, pause, unpause,
suspend, resume, reboot, shut down, destroy. Prints what it saw as JSON.

Usage: flow.py URL PASSWORD
"""
import json
import sys
import time

from os_xenapi.client import XenAPI

url, password = sys.argv[1], sys.argv[2]
session = XenAPI.Session(url)
session.xenapi.login_with_password('root', password)
x = session.xenapi
out = {'steps': []}


def step(name, fn, *args):
    t0 = time.time()
    result = fn(*args)
    rec = x.VM.get_record(vm) if vm else {}
    out['steps'].append({'step': name, 'power_state': rec.get('power_state'), 'domid': rec.get('domid'),
                         'ms': int((time.time() - t0) * 1000)})
    return result


vm = None
templates = [r for r, v in x.VM.get_all_records().items()
             if v['is_a_template'] and v['other_config'].get('default_template') == 'true' and v['PV_bootloader'] == 'pygrub']
out['template_count'] = len(templates)
template = templates[0]
vm = x.VM.clone(template, 'python flow guest')
out['clone_is_template'] = x.VM.get_is_a_template(vm)

# What xe and XenCenter do before provisioning: every sr="" becomes a real SR's uuid.
pool = x.pool.get_all()[0]
sr_uuid = x.SR.get_uuid(x.pool.get_default_SR(pool))
disks = x.VM.get_other_config(vm)['disks'].replace('sr=""', 'sr="%s"' % sr_uuid)
x.VM.remove_from_other_config(vm, 'disks')
x.VM.add_to_other_config(vm, 'disks', disks)

step('provision', x.VM.provision, vm)
out['after_provision'] = {'is_a_template': x.VM.get_is_a_template(vm), 'vbds': len(x.VM.get_VBDs(vm))}
out['allowed_before_start'] = sorted(x.VM.get_allowed_operations(vm))
step('start', x.VM.start, vm, False, False)
vbd = x.VM.get_VBDs(vm)[0]
out['vbd_attached'] = [x.VBD.get_currently_attached(vbd), x.VBD.get_device(vbd)]
step('pause', x.VM.pause, vm)
try:
    x.VM.pause(vm)
    out['pause_twice'] = 'no error'
except XenAPI.Failure as f:
    out['pause_twice'] = f.details
step('unpause', x.VM.unpause, vm)
step('suspend', x.VM.suspend, vm)
out['suspend_vdi_type'] = x.VDI.get_type(x.VM.get_suspend_VDI(vm))
step('resume', x.VM.resume, vm, False, False)
step('clean_reboot', x.VM.clean_reboot, vm)
step('clean_shutdown', x.VM.clean_shutdown, vm)

# Async: the task's result and the VM's final state.
task = x.Async.VM.start(vm, False, False)
while x.task.get_status(task) == 'pending':
    time.sleep(0.05)
out['async_start'] = [x.task.get_status(task), x.VM.get_power_state(vm)]
x.task.destroy(task)
step('hard_shutdown', x.VM.hard_shutdown, vm)

vdis = [x.VBD.get_VDI(b) for b in x.VM.get_VBDs(vm)]
x.VM.destroy(vm)
vm = None
out['vm_gone'] = True
for vdi in vdis:
    x.VDI.destroy(vdi)
out['vdis_destroyed'] = len(vdis)
session.xenapi.session.logout()
print(json.dumps(out))
