// Vendor and device names for PCI ids, from the system's pci.ids database when one is
// installed (hwdata / pciutils); empty names otherwise.
import { readFileSync } from 'node:fs';

const FILES = ['/usr/share/hwdata/pci.ids', '/usr/share/misc/pci.ids', '/usr/share/pci.ids'];

let table: Map<string, { name: string; devices: Map<string, string> }> | undefined;

function load(): Map<string, { name: string; devices: Map<string, string> }> {
  if (table) return table;
  table = new Map();
  let text = '';
  for (const f of FILES) {
    try {
      text = readFileSync(f, 'utf8');
      break;
    } catch {
      /* try the next place */
    }
  }
  let vendor: { name: string; devices: Map<string, string> } | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('C ')) break; // device classes follow the vendor list
    let m = /^([0-9a-f]{4})\s+(.+)$/.exec(line);
    if (m) {
      vendor = { name: m[2]!, devices: new Map() };
      table.set(m[1]!, vendor);
      continue;
    }
    m = /^\t([0-9a-f]{4})\s+(.+)$/.exec(line);
    if (m && vendor) vendor.devices.set(m[1]!, m[2]!);
  }
  return table;
}

export function pciNames(vendorId: string | undefined, deviceId: string | undefined): { vendor: string; device: string } {
  if (!vendorId) return { vendor: '', device: '' };
  const v = load().get(vendorId.toLowerCase());
  return { vendor: v?.name ?? '', device: (deviceId && v?.devices.get(deviceId.toLowerCase())) || '' };
}
