"""The ``[configdrive]`` options of ironic.conf and ``list_opts`` for oslo-config-generator.

One group, one module: the image core, the stores, the exposure mechanisms and the deploy
interface all read their settings from here. Register with :func:`register_opts` (the deploy
interface does it on import of :mod:`ironic_configdrive.deploy`).
"""

from __future__ import annotations

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
               help="File holding the conductor's key-encryption key, which wraps the "
                    "per-drive keys kept in driver_internal_info. Created (mode 0600) on "
                    "first use if missing. Every conductor of a deployment must have the "
                    "same file, or a node taken over by another conductor cannot be "
                    "redeployed from its stored drive."),
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

ALL_OPTS = [*image_opts, *store_opts, *exposure_opts, *encryption_opts, *reconcile_opts,
            *reader_opts]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(ALL_OPTS, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Entry point for ``oslo-config-generator --namespace ironic_configdrive``."""
    return [(GROUP, list(ALL_OPTS))]
