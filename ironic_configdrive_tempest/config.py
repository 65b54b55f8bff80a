"""The ``[ironic_configdrive]`` group of tempest.conf.

The scenario skips unless ``enabled`` is true and a node and an image are named: it deploys a
real node, which a cloud has to offer on purpose.
"""

from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup(name="ironic_configdrive",
                     title="ironic-configdrive scenario: deploy with a config drive")

OPTS = [
    cfg.BoolOpt("enabled", default=False,
                help="Run the config drive scenario. Needs an Ironic whose conductor has the "
                     "'configdrive' deploy interface enabled and an available node."),
    cfg.StrOpt("auth", default="keystone", choices=("keystone", "noauth"),
               help="How to reach the Bare Metal API: 'keystone' uses tempest's admin "
                    "credentials and the service catalog; 'noauth' talks to 'endpoint' "
                    "directly (an Ironic with auth_strategy = noauth, e.g. the local lab)."),
    cfg.URIOpt("endpoint", default=None, schemes=("http", "https"),
               help="Bare Metal API root (e.g. http://127.0.0.1:6385) for auth = noauth. With "
                    "keystone, overrides the catalog's endpoint when set."),
    cfg.StrOpt("catalog_type", default="baremetal",
               help="Service catalog type of the Bare Metal API (auth = keystone)."),
    cfg.StrOpt("api_microversion", default="latest",
               help="X-OpenStack-Ironic-API-Version sent with every request (>= 1.56 is "
                    "needed for a config drive given as JSON)."),
    cfg.StrOpt("node", default=None,
               help="UUID or name of an 'available' node to deploy (and tear down)."),
    cfg.StrOpt("driver", default=None,
               help="Hardware type to switch the node to for the test (restored after), "
                    "e.g. 'ipmi-configdrive': Ironic accepts the configdrive deploy interface "
                    "only with a hardware type that lists it (ironic-configdrive's "
                    "*-configdrive variants, or fake-hardware)."),
    cfg.StrOpt("image_source", default=None,
               help="Whole-disk image URL (or Glance UUID) written to the node."),
    cfg.StrOpt("image_checksum", default=None,
               help="Checksum of image_source (md5/sha256 hex, or a URL to a checksum "
                    "file); not needed for a Glance image."),
    cfg.StrOpt("image_disk_format", default=None,
               help="instance_info/image_disk_format for an image given by URL, e.g. 'raw' "
                    "(without it IPA sniffs the format, and a raw whole-disk image with a GPT "
                    "is taken for format 'gpt', which qemu-img cannot convert)."),
    cfg.StrOpt("exposure", default=None, choices=("partition", "virtual_media"),
               help="Set instance_info/configdrive_exposure to this (the cloud must "
                    "allow it: [configdrive]allow_instance_overrides = "
                    "configdrive_exposure); unset: the conductor's [configdrive]exposure "
                    "decides."),
    cfg.BoolOpt("expect_erase", default=True,
                help="After undeploy, expect automated cleaning to have run the "
                     "erase_configdrive step: no config drive record left on the node and, "
                     "with disk_image, zeros where the drive was."),
    cfg.StrOpt("disk_image", default=None,
               help="Path, on the host running tempest, of a raw file that is the node's "
                    "disk (the lab's DIR/disk.img). When set, the config-2 partition is read "
                    "from it and checked byte for byte and by content."),
    cfg.IntOpt("deploy_timeout", default=1800, min=1,
               help="Seconds to wait for the node to become active."),
    cfg.IntOpt("undeploy_timeout", default=1800, min=1,
               help="Seconds to wait for the node to be available again after undeploy."),
    cfg.IntOpt("poll_interval", default=2, min=1,
               help="Seconds between node state polls."),
    cfg.BoolOpt("nova", default=False,
                help="Run the Nova variant: a server created through Nova with a config "
                     "drive ([compute]flavor_ref, image_ref; no network) must land on 'node', "
                     "whose drive is then checked like the Ironic scenario's, and deleting "
                     "the server must clean it away. Uses tempest's admin credentials for "
                     "Nova; the flavor must select only that node."),
]


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, list(OPTS))]
