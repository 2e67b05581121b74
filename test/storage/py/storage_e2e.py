"""End-to-end storage flow with the classic XenAPI.py (Debian's python3-os-xenapi):
file SRs, a disk with real bytes, snapshot, clone, copy to a second SR, byte checks,
then everything destroyed and the disk space back. Prints what it saw as JSON; the
checks that decide pass or fail are in python-e2e.test.ts.

Usage: storage_e2e.py URL PASSWORD DIR_A DIR_B
"""
import json
import os
import subprocess
import sys

from os_xenapi.client import XenAPI

url, password, dir_a, dir_b = sys.argv[1:5]
MiB = 1024 * 1024
out = {}


def allocated(d):
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512 for f in os.listdir(d))


def pattern_ok(path, byte, offset, length):
    r = subprocess.run(['qemu-io', '-r', '-f', 'qcow2', '-c', 'read -P %d %d %d' % (byte, offset, length), path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode == 0


session = XenAPI.Session(url)
session.xenapi.login_with_password('root', password)
x = session.xenapi
try:
    host = x.host.get_all()[0]
    sr_a = x.SR.create(host, {'location': dir_a}, '0', 'e2e A', '', 'file', '', False, {})
    sr_b = x.SR.create(host, {'location': dir_b}, '0', 'e2e B', '', 'file', '', False, {})
    out['sr_a'] = x.SR.get_record(sr_a)

    disk = x.VDI.create({'name_label': 'e2e disk', 'name_description': 'written by the test', 'SR': sr_a,
                         'virtual_size': str(128 * MiB), 'type': 'user', 'sharable': False, 'read_only': False,
                         'other_config': {'purpose': 'e2e'}})
    rec = x.VDI.get_record(disk)
    out['disk'] = rec
    path = os.path.join(dir_a, rec['location'])
    # 32 MiB of real data at the start of the disk, 1 MiB of another byte near its end.
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x61 0 %d' % (32 * MiB), '-c',
                    'write -P 0x62 %d %d' % (120 * MiB, MiB), path], check=True, stdout=subprocess.DEVNULL)
    out['allocated_with_data'] = allocated(dir_a)

    snap = x.VDI.snapshot(disk, {})
    clone = x.VDI.clone(disk, {})
    # The disk changes after both; they must not.
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x63 0 %d' % MiB, path], check=True, stdout=subprocess.DEVNULL)
    copy = x.VDI.copy(disk, sr_b)
    s_rec, c_rec, cp_rec = x.VDI.get_record(snap), x.VDI.get_record(clone), x.VDI.get_record(copy)
    out['snapshot'], out['clone'], out['copy'] = s_rec, c_rec, cp_rec
    s_path = os.path.join(dir_a, s_rec['location'])
    c_path = os.path.join(dir_a, c_rec['location'])
    cp_path = os.path.join(dir_b, cp_rec['location'])
    out['bytes'] = {
        'snapshot_old_data': pattern_ok(s_path, 0x61, 0, 32 * MiB) and pattern_ok(s_path, 0x62, 120 * MiB, MiB),
        'clone_old_data': pattern_ok(c_path, 0x61, 0, 32 * MiB) and pattern_ok(c_path, 0x62, 120 * MiB, MiB),
        'disk_new_data': pattern_ok(path, 0x63, 0, MiB) and pattern_ok(path, 0x61, MiB, 31 * MiB),
        'copy_equals_disk': subprocess.run(['qemu-img', 'compare', '-q', path, cp_path]).returncode == 0,
        'copy_new_data': pattern_ok(cp_path, 0x63, 0, MiB) and pattern_ok(cp_path, 0x62, 120 * MiB, MiB),
    }
    out['copy_sr'] = cp_rec['SR'] == sr_b
    out['sr_b_after_copy'] = x.SR.get_record(sr_b)
    out['allocated_full'] = {'a': allocated(dir_a), 'b': allocated(dir_b)}

    for v in (snap, clone, disk, copy):
        x.VDI.destroy(v)
    out['after_vdi_destroy'] = {'a': sorted(os.listdir(dir_a)), 'b': sorted(os.listdir(dir_b)),
                                'vdis_a': x.SR.get_VDIs(sr_a), 'vdis_b': x.SR.get_VDIs(sr_b)}
    for sr in (sr_a, sr_b):
        for pbd in x.SR.get_PBDs(sr):
            x.PBD.unplug(pbd)
        x.SR.destroy(sr)
    out['after_sr_destroy'] = {'a': os.listdir(dir_a), 'b': os.listdir(dir_b), 'srs': len(x.SR.get_all()),
                               'allocated': allocated(dir_a) + allocated(dir_b)}
    try:
        x.VDI.get_record(disk)
        out['disk_gone'] = False
    except XenAPI.Failure as e:
        out['disk_gone'] = e.details[0] == 'HANDLE_INVALID'
finally:
    session.xenapi.session.logout()

print(json.dumps(out))
