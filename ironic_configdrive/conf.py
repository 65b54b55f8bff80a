"""The ``[configdrive]`` options of ironic.conf and ``list_opts`` for oslo-config-generator.

One group, one module: the image core, the stores, the exposure mechanisms and the deploy
interface all read their settings from here. Register with :func:`register_opts` (the deploy
interface does it on import of :mod:`ironic_configdrive.deploy`).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

from oslo_config import cfg, types

from ironic_configdrive.image import formats, readers

GROUP = "configdrive"

image_opts = [
    cfg.StrOpt("format", default=formats.ISO9660,
               choices=[(formats.ISO9660, "ISO9660 with Rock Ridge and Joliet, label "
                                          "config-2: what every reader accepts"),
                        (formats.VFAT, "FAT, label CONFIG-2 (chosen anyway on disks with "
                                       "4096-byte sectors)")],
               help="Filesystem of config drives built from the JSON form. vfat is used "
                    "automatically on disks with 4096-byte logical sectors, where ISO9660 "
                    "cannot be mounted."),
    cfg.IntOpt("max_size", default=formats.MAX_IMAGE_SIZE, min=1024 * 1024,
               max=formats.MAX_IMAGE_SIZE,
               help="Largest decoded config drive image accepted, in bytes. Upstream Ironic, "
                    "ironic-python-agent and cloud-init expect at most 64 MiB."),
    cfg.BoolOpt("cloudstack_layout", default=False,
                help="Also write the CloudStack layout (cloudstack/metadata, password and "
                     "userdata) into built config drives."),
]

store_opts = [
    cfg.StrOpt("store", default="http",
               help="Where config drive images are kept while a node is deployed: 'swift' "
                    "(Swift or radosgw, temporary URLs) or 'http' (files under "
                    "[deploy]http_root served at [deploy]http_url). Any plugin in the "
                    "'ironic_configdrive.stores' entry point namespace may be named."),
    cfg.StrOpt("swift_container", default="ironic_configdrive",
               help="Swift container for config drive objects; created (private) if "
                    "missing."),
    cfg.IntOpt("swift_temp_url_duration", default=3600, min=60,
               help="Lifetime in seconds of the temporary URL given to the agent or the BMC. "
                    "A fresh one is signed whenever the drive is (re)attached."),
    cfg.IntOpt("swift_delete_after", default=7 * 24 * 3600, min=0,
               help="X-Delete-After set on stored objects, in seconds: a backstop that lets "
                    "Swift expire drives whose node was never torn down (0 disables it). "
                    "Teardown deletes them explicitly."),
    cfg.StrOpt("swift_auth_url",
               help="Authenticate to Swift with TempAuth/v1 credentials at this URL instead "
                    "of Ironic's [swift] Keystone session (Swift without Keystone, radosgw "
                    "with Swift auth). Used together with swift_user and swift_key."),
    cfg.StrOpt("swift_user", help="User for swift_auth_url, e.g. 'account:user'."),
    cfg.StrOpt("swift_key", secret=True, help="Key (password) for swift_user."),
    cfg.FloatOpt("swift_timeout", min=1,
                 help="Seconds one Swift request may take before it is abandoned (and "
                      "retried per store_retries). Defaults to Ironic's [swift]timeout, or "
                      "60 when that is unset."),
    cfg.IntOpt("store_retries", default=3, min=0,
               help="How many times a failed store operation (5xx, connection error) is "
                    "retried before the deploy fails."),
    cfg.StrOpt("http_subdir", default="configdrive",
               help="Subdirectory of [deploy]http_root holding config drives served by the "
                    "'http' store."),
    cfg.BoolOpt("allow_url_passthrough", default=False,
                help="Hand a config drive URL given by the user straight to the agent or BMC "
                     "instead of fetching, validating and re-storing it on the conductor. "
                     "Without it the sha256 is always known and agents never reach external "
                     "hosts."),
]

exposure_opts = [
    cfg.StrOpt("exposure", default="partition",
               help="How the node sees its config drive: 'partition' (written to a "
                    "config-2 partition by the agent), 'virtual_media' (Redfish virtual "
                    "media, no agent needed) or 'auto' (virtual media when the node's BMC "
                    "offers a free CD or USB slot, else partition). Overridable per node with "
                    "driver_info/instance_info 'configdrive_exposure'."),
    cfg.StrOpt("virtual_media_fallback", default="partition",
               choices=[("partition", "write the drive to a config-2 partition through "
                                      "the agent instead"),
                        ("fail", "fail the deploy, naming the BMC's missing capability")],
               help="What to do when virtual media is requested but the BMC has no free "
                    "usable slot: fall back to the partition mechanism, or fail the deploy."),
    cfg.IntOpt("agent_command_timeout", default=600, min=10,
               help="Seconds to wait for the agent's configdrive.write/remove commands."),
    cfg.IntOpt("virtual_media_insert_timeout", default=30, min=1,
               help="Seconds to wait for the BMC to report inserted virtual media after an "
                    "insert; on time-out the media is ejected and the attach fails."),
]

encryption_opts = [
    cfg.BoolOpt("encrypt_at_rest", default=True,
                help="Store config drives encrypted (AES-256-GCM, a fresh key per drive). "
                     "The agent decrypts while it writes the partition; the key travels "
                     "only in the agent command. For virtual media the conductor decrypts "
                     "and serves a plain copy from [deploy]http_root only while the media "
                     "is attached (a BMC cannot decrypt), so that store must be usable too."),
    cfg.StrOpt("key_file", default="$state_path/configdrive.key",
               help="File holding the current key-encryption key (64 hexadecimal digits), "
                    "which wraps the per-drive keys kept in driver_internal_info. It must "
                    "be a regular file (not a symbolic link) owned by the conductor's user "
                    "with mode 0600 or stricter. Every conductor of a deployment must have "
                    "the same file, or a node taken over by another conductor cannot be "
                    "redeployed from its stored drive."),
    cfg.BoolOpt("key_file_create", default=True,
                help="Create key_file with a new random key when it is missing (atomically, "
                     "mode 0600; a warning names its fingerprint). Convenient for a single "
                     "conductor and the first start of a deployment. With several "
                     "conductors, set it to False once every conductor has the same file: a "
                     "missing file (e.g. a state_path that does not persist) is then an "
                     "error instead of a new key that the other conductors lack."),
    cfg.ListOpt("old_key_files", default=[],
                help="Files of retired key-encryption keys, used only to unwrap drive keys "
                     "wrapped before a rotation (each record names its key's fingerprint). "
                     "Records are re-wrapped with key_file whenever the conductor touches "
                     "them (rebuild, update, takeover) and by 'ironic-configdrive-keys "
                     "rewrap'; remove a file from the list once 'ironic-configdrive-keys "
                     "status' shows no node using its fingerprint. Same checks as key_file; "
                     "never created."),
]

reconcile_opts = [
    cfg.IntOpt("reconcile_interval", default=600, min=0,
               help="Seconds between runs of the reconciler, a periodic task on every "
                    "conductor (also run when it starts) that deletes stored config drives "
                    "no node's record names (crashes, deleted nodes, failed teardowns, "
                    "takeovers) and retries recorded deletes. 0 disables it."),
    cfg.IntOpt("reconcile_grace", default=60, min=0,
               help="Seconds a stored config drive must have existed before the reconciler "
                    "may delete it as unreferenced; a margin for clocks and for stores "
                    "that list a write before its record is visible."),
    cfg.IntOpt("reconcile_limit", default=200, min=1,
               help="Most stored objects listed, and most nodes visited, per reconciler "
                    "run and store, so one run stays short; the rest waits for the next."),
    cfg.BoolOpt("http_root_shared", default=False,
                help="Whether [deploy]http_root is the same directory on every conductor "
                     "(a shared file system). When False (the default), files the 'http' "
                     "store and virtual media copies keep there belong to the conductor "
                     "that wrote them: only it deletes them, and a conductor taking a node "
                     "over makes its own copy."),
]

#: Per-node keys instance_info may set only when allowed (see node_options).
GUARDED_NODE_KEYS: Final = ("configdrive_device", "configdrive_exposure")

instance_override_opts = [
    cfg.ListOpt("allow_instance_overrides", default=[],
                item_type=types.String(choices=GUARDED_NODE_KEYS),
                help="Per-node settings a deploy may choose in instance_info (which whoever "
                     "deploys sets, e.g. a tenant through Nova or a node lessee) instead of "
                     "the operator's driver_info: 'configdrive_device' (the disk that "
                     "receives the config-2 partition; the agent still accepts only the "
                     "disk the root device hints choose unless driver_info names it) and "
                     "'configdrive_exposure' (e.g. 'virtual_media', for which the conductor "
                     "serves a decrypted copy of the drive over HTTP). Empty by default: a "
                     "deploy whose instance_info sets one of them fails validation. "
                     "configdrive_format may always be chosen."),
]

class _Network(types.String):
    """A CIDR network; a ValueError otherwise, which oslo.config reports with the option."""

    def __init__(self) -> None:
        super().__init__(type_name="CIDR network")

    def __call__(self, value: Any) -> str:
        text = str(super().__call__(value)).strip()
        ipaddress.ip_network(text, strict=False)
        return text


fetch_opts = [
    cfg.ListOpt("fetch_allowed_networks", default=[],
                item_type=_Network(),
                help="Networks (CIDR, e.g. 10.20.0.0/16) a config drive URL given by a user "
                     "may point into although they are not global unicast addresses. "
                     "Without an entry, URLs whose host is or resolves to a loopback, "
                     "link-local (169.254.169.254), private (RFC 1918, ULA), shared, "
                     "multicast, unspecified or reserved address are refused, before any "
                     "connection. Applies to URLs the conductor downloads, to every redirect "
                     "hop, and to URLs handed on with allow_url_passthrough."),
    cfg.ListOpt("fetch_allowed_hosts", default=[],
                help="When set, config drive URLs given by users must name one of these "
                     "hosts (exact names, or '*.example.com' for its subdomains); their "
                     "addresses are still checked as fetch_allowed_networks says. Empty: any "
                     "host name."),
    cfg.IntOpt("fetch_deadline", default=120, min=1,
               help="Seconds a config drive download by the conductor (a user's URL, or the "
                    "stored drive read back) may take in all, redirects and a slow server "
                    "included; the node's lock is held meanwhile."),
]

agent_download_opts = [
    cfg.IntOpt("agent_download_timeout", min=1, max=86400,
               help="Seconds the agent may spend downloading a config drive for one "
                    "configdrive.write, every retry, resume and backoff included; a store "
                    "that stalls or sends a byte at a time then fails the write with a "
                    "clear error. Unset: three quarters of agent_command_timeout, so the "
                    "agent gives up and says why before the conductor stops waiting. Keep "
                    "it below agent_command_timeout."),
]

reader_opts = [
    cfg.ListOpt("readers",
                item_type=types.String(choices=readers.READERS),
                default=[readers.CLOUD_INIT, readers.GLEAN, readers.CLOUDBASE_INIT],
                help="Programs that read the config drives of nodes that do not name their "
                     "own in driver_info/instance_info 'configdrive_readers': any of "
                     "cloud-init, glean, cloudbase-init, ignition (Ignition and Afterburn, "
                     "Fedora CoreOS and RHCOS). The conductor builds a format all of them "
                     "can read and refuses a deploy when there is none. Ignition is left "
                     "out by default because it cannot read the vfat drive that disks with "
                     "4096-byte sectors need: add it here when every node boots CoreOS."),
]

network_data_opts = [
    cfg.BoolOpt("repair_network_data", default=True,
                help="When a config drive's network_data.json is invalid ({}, nothing in "
                     "links/networks/services, or a link without MTU unless "
                     "[conductor]disable_metadata_mtu_check) and the node's network "
                     "interface provides network data (flat, neutron) and the node has "
                     "VIFs, rebuild it from the node's ports and portgroups and Neutron and "
                     "write it into every version directory of the drive, in the drive's "
                     "own format, without mkisofs. Ironic's own check "
                     "([conductor]disable_configdrive_check) is skipped for nodes with "
                     "this deploy interface either way."),
]

ALL_OPTS = [*image_opts, *store_opts, *exposure_opts, *encryption_opts, *reconcile_opts,
            *instance_override_opts, *fetch_opts, *agent_download_opts, *reader_opts,
            *network_data_opts]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(ALL_OPTS, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Entry point for ``oslo-config-generator --namespace ironic_configdrive``."""
    return [(GROUP, list(ALL_OPTS))]
