"""Reads an xl domain config file with Xen's own parser (libxlutil, the library xl links):
the file's syntax, its settings, and each disk spec through xlu_disk_parse into a
libxl_device_disk, printed as libxl's JSON. Prints {"error": ...} when the libraries
are missing. Usage: xlcfg.py CONFIG_FILE
"""
import ctypes
import ctypes.util
import json
import sys

try:
    xlu = ctypes.CDLL('libxlutil.so.4.17')
    xl = ctypes.CDLL('libxenlight.so.4.17')
except OSError as e:
    print(json.dumps({'error': 'libxlutil/libxenlight 4.17 not found: %s' % e}))
    sys.exit(0)

libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
report = libc.fdopen(2, b'w')

xlu.xlu_cfg_init.restype = ctypes.c_void_p
xlu.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
xlu.xlu_cfg_readdata.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
xlu.xlu_cfg_get_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
xlu.xlu_cfg_get_long.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_long), ctypes.c_int]
xlu.xlu_cfg_get_list.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int), ctypes.c_int]
xlu.xlu_cfg_get_listitem.restype = ctypes.c_char_p
xlu.xlu_cfg_get_listitem.argtypes = [ctypes.c_void_p, ctypes.c_int]
xlu.xlu_disk_parse.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
xl.libxl_device_disk_to_json.restype = ctypes.c_char_p
xl.libxl_device_disk_to_json.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

path = sys.argv[1]
data = open(path, 'rb').read()
cfg = xlu.xlu_cfg_init(report, path.encode())
rc = xlu.xlu_cfg_readdata(cfg, data, len(data))
out = {'rc': rc, 'strings': {}, 'longs': {}, 'lists': {}, 'disks': []}
if rc == 0:
    for key in ['name', 'uuid', 'type', 'bootloader', 'kernel', 'ramdisk', 'cmdline', 'boot', 'cpus',
                'on_poweroff', 'on_reboot', 'on_crash', 'on_watchdog']:
        s = ctypes.c_char_p()
        if xlu.xlu_cfg_get_string(cfg, key.encode(), ctypes.byref(s), 1) == 0:
            out['strings'][key] = s.value.decode()
    for key in ['memory', 'maxmem', 'vcpus', 'maxvcpus', 'cpu_weight', 'cap', 'shadow_memory', 'acpi', 'apic', 'pae', 'viridian', 'hpet']:
        v = ctypes.c_long()
        if xlu.xlu_cfg_get_long(cfg, key.encode(), ctypes.byref(v), 1) == 0:
            out['longs'][key] = v.value
    for key in ['disk', 'vif', 'bootloader_args']:
        lst = ctypes.c_void_p()
        n = ctypes.c_int()
        if xlu.xlu_cfg_get_list(cfg, key.encode(), ctypes.byref(lst), ctypes.byref(n), 1) == 0:
            out['lists'][key] = [xlu.xlu_cfg_get_listitem(lst, i).decode() for i in range(n.value)]
    for spec in out['lists'].get('disk', []):
        disk = ctypes.create_string_buffer(4096)
        xl.libxl_device_disk_init(disk)
        specs = (ctypes.c_char_p * 1)(spec.encode())
        r = xlu.xlu_disk_parse(cfg, 1, specs, disk)
        out['disks'].append({'rc': r, 'parsed': json.loads(xl.libxl_device_disk_to_json(None, disk).decode()) if r == 0 else None})
print(json.dumps(out))
