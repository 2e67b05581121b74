-- xapid schema 1: every API 1.1 class as a table, plus the change log and credentials.
CREATE TABLE "_changes" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "ts" REAL NOT NULL,
  "cls" TEXT NOT NULL,
  "op" TEXT NOT NULL CHECK ("op" IN ('add', 'mod', 'del')),
  "ref" TEXT NOT NULL,
  "uuid" TEXT NOT NULL,
  "snapshot" TEXT
);

CREATE TABLE "_passwords" (
  "uname" TEXT PRIMARY KEY,
  "hash" TEXT NOT NULL
);

CREATE TABLE "_session_auth" (
  "ref" TEXT PRIMARY KEY,
  "uname" TEXT NOT NULL,
  "originator" TEXT NOT NULL
);

CREATE TABLE "session" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "this_host" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "this_user" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "last_active" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "pool" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "session_uuid" ON "session" ("uuid");

CREATE TABLE "task" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "created" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "finished" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "status" TEXT NOT NULL DEFAULT 'pending',
  "resident_on" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "progress" REAL NOT NULL DEFAULT 0,
  "type" TEXT NOT NULL DEFAULT '',
  "result" TEXT NOT NULL DEFAULT '',
  "error_info" TEXT NOT NULL DEFAULT '[]',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "task_uuid" ON "task" ("uuid");

CREATE INDEX "task_name_label" ON "task" ("name_label");

CREATE TABLE "pool" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "master" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "default_SR" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "suspend_image_SR" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "crash_dump_SR" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "coordinator_bias" INTEGER NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX "pool_uuid" ON "pool" ("uuid");

CREATE INDEX "pool_name_label" ON "pool" ("name_label");

CREATE TABLE "pool_patch" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "version" TEXT NOT NULL DEFAULT '',
  "size" INTEGER NOT NULL DEFAULT 0,
  "pool_applied" INTEGER NOT NULL DEFAULT 0,
  "after_apply_guidance" TEXT NOT NULL DEFAULT '[]',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "pool_patch_uuid" ON "pool_patch" ("uuid");

CREATE INDEX "pool_patch_name_label" ON "pool_patch" ("name_label");

CREATE TABLE "VM" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "power_state" TEXT NOT NULL DEFAULT 'Halted',
  "user_version" INTEGER NOT NULL DEFAULT 0,
  "is_a_template" INTEGER NOT NULL DEFAULT 0,
  "suspend_VDI" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "resident_on" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "scheduled_to_be_resident_on" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "affinity" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "memory_overhead" INTEGER NOT NULL DEFAULT 0,
  "memory_target" INTEGER NOT NULL DEFAULT 0,
  "memory_static_max" INTEGER NOT NULL DEFAULT 0,
  "memory_dynamic_max" INTEGER NOT NULL DEFAULT 0,
  "memory_dynamic_min" INTEGER NOT NULL DEFAULT 0,
  "memory_static_min" INTEGER NOT NULL DEFAULT 0,
  "VCPUs_params" TEXT NOT NULL DEFAULT '{}',
  "VCPUs_max" INTEGER NOT NULL DEFAULT 0,
  "VCPUs_at_startup" INTEGER NOT NULL DEFAULT 0,
  "actions_after_shutdown" TEXT NOT NULL DEFAULT 'destroy',
  "actions_after_reboot" TEXT NOT NULL DEFAULT 'destroy',
  "actions_after_crash" TEXT NOT NULL DEFAULT 'destroy',
  "VUSBs" TEXT NOT NULL DEFAULT '[]',
  "PV_bootloader" TEXT NOT NULL DEFAULT '',
  "PV_kernel" TEXT NOT NULL DEFAULT '',
  "PV_ramdisk" TEXT NOT NULL DEFAULT '',
  "PV_args" TEXT NOT NULL DEFAULT '',
  "PV_bootloader_args" TEXT NOT NULL DEFAULT '',
  "PV_legacy_args" TEXT NOT NULL DEFAULT '',
  "HVM_boot_policy" TEXT NOT NULL DEFAULT '',
  "HVM_boot_params" TEXT NOT NULL DEFAULT '{}',
  "HVM_shadow_multiplier" REAL NOT NULL DEFAULT 1,
  "platform" TEXT NOT NULL DEFAULT '{}',
  "PCI_bus" TEXT NOT NULL DEFAULT '',
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "domid" INTEGER NOT NULL DEFAULT 0,
  "domarch" TEXT NOT NULL DEFAULT '',
  "last_boot_CPU_flags" TEXT NOT NULL DEFAULT '{}',
  "is_control_domain" INTEGER NOT NULL DEFAULT 0,
  "metrics" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "guest_metrics" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "last_booted_record" TEXT NOT NULL DEFAULT '',
  "recommendations" TEXT NOT NULL DEFAULT '',
  "xenstore_data" TEXT NOT NULL DEFAULT '{}',
  "appliance" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL'
);

CREATE UNIQUE INDEX "VM_uuid" ON "VM" ("uuid");

CREATE INDEX "VM_name_label" ON "VM" ("name_label");

CREATE INDEX "VM_resident_on" ON "VM" ("resident_on");

CREATE TABLE "VM_metrics" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "memory_actual" INTEGER NOT NULL DEFAULT 0,
  "VCPUs_number" INTEGER NOT NULL DEFAULT 0,
  "VCPUs_CPU" TEXT NOT NULL DEFAULT '{}',
  "VCPUs_params" TEXT NOT NULL DEFAULT '{}',
  "VCPUs_flags" TEXT NOT NULL DEFAULT '{}',
  "state" TEXT NOT NULL DEFAULT '[]',
  "start_time" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "install_time" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "last_updated" TEXT NOT NULL DEFAULT '19700101T00:00:00Z'
);

CREATE UNIQUE INDEX "VM_metrics_uuid" ON "VM_metrics" ("uuid");

CREATE TABLE "VM_guest_metrics" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "os_version" TEXT NOT NULL DEFAULT '{}',
  "PV_drivers_version" TEXT NOT NULL DEFAULT '{}',
  "PV_drivers_up_to_date" INTEGER NOT NULL DEFAULT 0,
  "networks" TEXT NOT NULL DEFAULT '{}',
  "other" TEXT NOT NULL DEFAULT '{}',
  "last_updated" TEXT NOT NULL DEFAULT '19700101T00:00:00Z'
);

CREATE UNIQUE INDEX "VM_guest_metrics_uuid" ON "VM_guest_metrics" ("uuid");

CREATE TABLE "host" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "memory_overhead" INTEGER NOT NULL DEFAULT 0,
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "API_version_major" INTEGER NOT NULL DEFAULT 0,
  "API_version_minor" INTEGER NOT NULL DEFAULT 0,
  "API_version_vendor" TEXT NOT NULL DEFAULT '',
  "API_version_vendor_implementation" TEXT NOT NULL DEFAULT '{}',
  "enabled" INTEGER NOT NULL DEFAULT 0,
  "software_version" TEXT NOT NULL DEFAULT '{}',
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "capabilities" TEXT NOT NULL DEFAULT '[]',
  "cpu_configuration" TEXT NOT NULL DEFAULT '{}',
  "sched_policy" TEXT NOT NULL DEFAULT '',
  "supported_bootloaders" TEXT NOT NULL DEFAULT '[]',
  "logging" TEXT NOT NULL DEFAULT '{}',
  "suspend_image_sr" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "crash_dump_sr" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "hostname" TEXT NOT NULL DEFAULT '',
  "address" TEXT NOT NULL DEFAULT '',
  "metrics" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "license_params" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "host_uuid" ON "host" ("uuid");

CREATE INDEX "host_name_label" ON "host" ("name_label");

CREATE TABLE "host_crashdump" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "host" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "timestamp" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "size" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "host_crashdump_uuid" ON "host_crashdump" ("uuid");

CREATE INDEX "host_crashdump_host" ON "host_crashdump" ("host");

CREATE TABLE "host_patch" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "version" TEXT NOT NULL DEFAULT '',
  "host" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "applied" INTEGER NOT NULL DEFAULT 0,
  "timestamp_applied" TEXT NOT NULL DEFAULT '19700101T00:00:00Z',
  "size" INTEGER NOT NULL DEFAULT 0,
  "pool_patch" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "host_patch_uuid" ON "host_patch" ("uuid");

CREATE INDEX "host_patch_name_label" ON "host_patch" ("name_label");

CREATE INDEX "host_patch_host" ON "host_patch" ("host");

CREATE INDEX "host_patch_pool_patch" ON "host_patch" ("pool_patch");

CREATE TABLE "host_metrics" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "memory_total" INTEGER NOT NULL DEFAULT 0,
  "live" INTEGER NOT NULL DEFAULT 0,
  "last_updated" TEXT NOT NULL DEFAULT '19700101T00:00:00Z'
);

CREATE UNIQUE INDEX "host_metrics_uuid" ON "host_metrics" ("uuid");

CREATE TABLE "host_cpu" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "host" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "number" INTEGER NOT NULL DEFAULT 0,
  "vendor" TEXT NOT NULL DEFAULT '',
  "speed" INTEGER NOT NULL DEFAULT 0,
  "modelname" TEXT NOT NULL DEFAULT '',
  "family" INTEGER NOT NULL DEFAULT 0,
  "model" INTEGER NOT NULL DEFAULT 0,
  "stepping" TEXT NOT NULL DEFAULT '',
  "flags" TEXT NOT NULL DEFAULT '',
  "features" TEXT NOT NULL DEFAULT '',
  "utilisation" REAL NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX "host_cpu_uuid" ON "host_cpu" ("uuid");

CREATE INDEX "host_cpu_host" ON "host_cpu" ("host");

CREATE TABLE "network" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "bridge" TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX "network_uuid" ON "network" ("uuid");

CREATE INDEX "network_name_label" ON "network" ("name_label");

CREATE TABLE "VIF" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "device" TEXT NOT NULL DEFAULT '',
  "network" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "VM" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "MAC" TEXT NOT NULL DEFAULT '',
  "MTU" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "currently_attached" INTEGER NOT NULL DEFAULT 0,
  "status_code" INTEGER NOT NULL DEFAULT 0,
  "status_detail" TEXT NOT NULL DEFAULT '',
  "runtime_properties" TEXT NOT NULL DEFAULT '{}',
  "qos_algorithm_type" TEXT NOT NULL DEFAULT '',
  "qos_algorithm_params" TEXT NOT NULL DEFAULT '{}',
  "qos_supported_algorithms" TEXT NOT NULL DEFAULT '[]'
);

CREATE UNIQUE INDEX "VIF_uuid" ON "VIF" ("uuid");

CREATE INDEX "VIF_network" ON "VIF" ("network");

CREATE INDEX "VIF_VM" ON "VIF" ("VM");

CREATE TABLE "VIF_metrics" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "last_updated" TEXT NOT NULL DEFAULT '19700101T00:00:00Z'
);

CREATE UNIQUE INDEX "VIF_metrics_uuid" ON "VIF_metrics" ("uuid");

CREATE TABLE "PIF" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "device" TEXT NOT NULL DEFAULT '',
  "network" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "host" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "MAC" TEXT NOT NULL DEFAULT '',
  "MTU" INTEGER NOT NULL DEFAULT 0,
  "VLAN" INTEGER NOT NULL DEFAULT 0,
  "metrics" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "physical" INTEGER NOT NULL DEFAULT 0,
  "currently_attached" INTEGER NOT NULL DEFAULT 1,
  "ip_configuration_mode" TEXT NOT NULL DEFAULT 'None',
  "IP" TEXT NOT NULL DEFAULT '',
  "netmask" TEXT NOT NULL DEFAULT '',
  "gateway" TEXT NOT NULL DEFAULT '',
  "DNS" TEXT NOT NULL DEFAULT '',
  "bond_slave_of" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "VLAN_master_of" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "management" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "PIF_uuid" ON "PIF" ("uuid");

CREATE INDEX "PIF_network" ON "PIF" ("network");

CREATE INDEX "PIF_host" ON "PIF" ("host");

CREATE INDEX "PIF_bond_slave_of" ON "PIF" ("bond_slave_of");

CREATE TABLE "PIF_metrics" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "carrier" INTEGER NOT NULL DEFAULT 0,
  "vendor_id" TEXT NOT NULL DEFAULT '',
  "vendor_name" TEXT NOT NULL DEFAULT '',
  "device_id" TEXT NOT NULL DEFAULT '',
  "device_name" TEXT NOT NULL DEFAULT '',
  "speed" INTEGER NOT NULL DEFAULT 0,
  "duplex" INTEGER NOT NULL DEFAULT 0,
  "pci_bus_path" TEXT NOT NULL DEFAULT '',
  "last_updated" TEXT NOT NULL DEFAULT '19700101T00:00:00Z'
);

CREATE UNIQUE INDEX "PIF_metrics_uuid" ON "PIF_metrics" ("uuid");

CREATE TABLE "Bond" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "master" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "Bond_uuid" ON "Bond" ("uuid");

CREATE INDEX "Bond_master" ON "Bond" ("master");

CREATE TABLE "VLAN" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "tagged_PIF" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "untagged_PIF" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "tag" INTEGER NOT NULL DEFAULT -1,
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "VLAN_uuid" ON "VLAN" ("uuid");

CREATE INDEX "VLAN_tagged_PIF" ON "VLAN" ("tagged_PIF");

CREATE TABLE "SM" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "type" TEXT NOT NULL DEFAULT '',
  "vendor" TEXT NOT NULL DEFAULT '',
  "copyright" TEXT NOT NULL DEFAULT '',
  "version" TEXT NOT NULL DEFAULT '',
  "required_api_version" TEXT NOT NULL DEFAULT '',
  "configuration" TEXT NOT NULL DEFAULT '{}',
  "capabilities" TEXT NOT NULL DEFAULT '[]',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "SM_uuid" ON "SM" ("uuid");

CREATE INDEX "SM_name_label" ON "SM" ("name_label");

CREATE TABLE "SR" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "virtual_allocation" INTEGER NOT NULL DEFAULT 0,
  "physical_utilisation" INTEGER NOT NULL DEFAULT 0,
  "physical_size" INTEGER NOT NULL DEFAULT 0,
  "type" TEXT NOT NULL DEFAULT '',
  "content_type" TEXT NOT NULL DEFAULT '',
  "shared" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "sm_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "SR_uuid" ON "SR" ("uuid");

CREATE INDEX "SR_name_label" ON "SR" ("name_label");

CREATE TABLE "VDI" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "name_label" TEXT NOT NULL DEFAULT '',
  "name_description" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "SR" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "virtual_size" INTEGER NOT NULL DEFAULT 0,
  "physical_utilisation" INTEGER NOT NULL DEFAULT 0,
  "type" TEXT NOT NULL DEFAULT 'system',
  "sharable" INTEGER NOT NULL DEFAULT 0,
  "read_only" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "storage_lock" INTEGER NOT NULL DEFAULT 0,
  "location" TEXT NOT NULL DEFAULT '',
  "managed" INTEGER NOT NULL DEFAULT 0,
  "missing" INTEGER NOT NULL DEFAULT 0,
  "parent" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "xenstore_data" TEXT NOT NULL DEFAULT '{}',
  "sm_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "VDI_uuid" ON "VDI" ("uuid");

CREATE INDEX "VDI_name_label" ON "VDI" ("name_label");

CREATE INDEX "VDI_SR" ON "VDI" ("SR");

CREATE TABLE "VBD" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "VM" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "VDI" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "device" TEXT NOT NULL DEFAULT '',
  "userdevice" TEXT NOT NULL DEFAULT '',
  "bootable" INTEGER NOT NULL DEFAULT 0,
  "mode" TEXT NOT NULL DEFAULT 'RO',
  "type" TEXT NOT NULL DEFAULT 'CD',
  "unpluggable" INTEGER NOT NULL DEFAULT 1,
  "storage_lock" INTEGER NOT NULL DEFAULT 0,
  "empty" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}',
  "currently_attached" INTEGER NOT NULL DEFAULT 0,
  "status_code" INTEGER NOT NULL DEFAULT 0,
  "status_detail" TEXT NOT NULL DEFAULT '',
  "runtime_properties" TEXT NOT NULL DEFAULT '{}',
  "qos_algorithm_type" TEXT NOT NULL DEFAULT '',
  "qos_algorithm_params" TEXT NOT NULL DEFAULT '{}',
  "qos_supported_algorithms" TEXT NOT NULL DEFAULT '[]'
);

CREATE UNIQUE INDEX "VBD_uuid" ON "VBD" ("uuid");

CREATE INDEX "VBD_VM" ON "VBD" ("VM");

CREATE INDEX "VBD_VDI" ON "VBD" ("VDI");

CREATE TABLE "VBD_metrics" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX "VBD_metrics_uuid" ON "VBD_metrics" ("uuid");

CREATE TABLE "PBD" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "host" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "SR" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "device_config" TEXT NOT NULL DEFAULT '{}',
  "currently_attached" INTEGER NOT NULL DEFAULT 0,
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "PBD_uuid" ON "PBD" ("uuid");

CREATE INDEX "PBD_host" ON "PBD" ("host");

CREATE INDEX "PBD_SR" ON "PBD" ("SR");

CREATE TABLE "crashdump" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "VM" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "VDI" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "crashdump_uuid" ON "crashdump" ("uuid");

CREATE INDEX "crashdump_VM" ON "crashdump" ("VM");

CREATE INDEX "crashdump_VDI" ON "crashdump" ("VDI");

CREATE TABLE "VTPM" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "allowed_operations" TEXT NOT NULL DEFAULT '[]',
  "current_operations" TEXT NOT NULL DEFAULT '{}',
  "VM" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "backend" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL'
);

CREATE UNIQUE INDEX "VTPM_uuid" ON "VTPM" ("uuid");

CREATE INDEX "VTPM_VM" ON "VTPM" ("VM");

CREATE TABLE "console" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "protocol" TEXT NOT NULL DEFAULT 'vt100',
  "location" TEXT NOT NULL DEFAULT '',
  "VM" TEXT NOT NULL DEFAULT 'OpaqueRef:NULL',
  "other_config" TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX "console_uuid" ON "console" ("uuid");

CREATE INDEX "console_VM" ON "console" ("VM");

CREATE TABLE "user" (
  "ref" TEXT PRIMARY KEY,
  "uuid" TEXT NOT NULL DEFAULT '',
  "short_name" TEXT NOT NULL DEFAULT '',
  "fullname" TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX "user_uuid" ON "user" ("uuid");
