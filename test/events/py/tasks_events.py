"""Tasks and events through the classic XenAPI.py module (Debian's python3-os-xenapi):
an Async.VM.clone followed through task.get_record to success, a cancelled task, and an
event.register / event.next loop that sees a rename. Prints what it saw as JSON.

Usage: tasks_events.py URL PASSWORD
"""
import json
import sys
import time

from os_xenapi.client import XenAPI

url, password = sys.argv[1], sys.argv[2]
session = XenAPI.Session(url)
session.xenapi.login_with_password('root', password)
x = session.xenapi
out = {}

template = [r for r, v in x.VM.get_all_records().items() if v['is_a_template']][0]
task = x.Async.VM.clone(template, 'cloned by python')
statuses = []
for _ in range(400):
    rec = x.task.get_record(task)
    statuses.append(rec['status'])
    if rec['status'] != 'pending':
        break
    time.sleep(0.025)
out['clone_task'] = {k: rec[k] for k in ('status', 'name_label', 'progress', 'result', 'error_info')}
clone = rec['result'].replace('<value>', '').replace('</value>', '')
out['clone_name'] = x.VM.get_name_label(clone)

mine = x.task.create('python task', 'to be cancelled')
x.task.cancel(mine)
out['cancelled_status'] = x.task.get_status(mine)
try:
    x.task.cancel(mine)
    out['second_cancel'] = 'accepted'
except XenAPI.Failure as f:
    out['second_cancel'] = f.details[0]

x.event.register(['vm'])
x.VM.set_name_label(clone, 'renamed by python')
seen = []
for _ in range(5):
    for ev in x.event.next():
        seen.append([ev['class'], ev['operation'], ev['ref'], ev.get('snapshot', {}).get('name_label')])
    if any(s[2] == clone and s[3] == 'renamed by python' for s in seen):
        break
out['events'] = seen
out['clone'] = clone
x.event.unregister(['vm'])
x.VM.destroy(clone)
session.xenapi.session.logout()
print(json.dumps(out))
