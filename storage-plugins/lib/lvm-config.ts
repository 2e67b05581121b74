// Without a running udev (a minimal dom0), LVM would wait for udev to make the /dev
// nodes of a volume it activates (and remove them on deactivation): these options make
// LVM handle the nodes itself. Shared by the lvm plugin and its tests.
import { existsSync } from 'node:fs';

const NO_UDEV = ['--config', 'activation { udev_sync = 0 udev_rules = 0 } devices { obtain_device_list_from_udev = 0 }'];

/** The options every lvm command needs on this machine now. */
export function lvmUdevArgs(): string[] {
  return existsSync('/run/udev/control') ? [] : NO_UDEV;
}
