"""The ``[configdrive]`` options of ironic.conf and ``list_opts`` for oslo-config-generator.

This module holds the options of the image core, which every later layer (stores, exposure,
the deploy interface) reads; those layers add their options to the same group here.
"""

from __future__ import annotations

from oslo_config import cfg

from ironic_configdrive.image import formats

GROUP = "configdrive"

image_opts = [
    cfg.StrOpt("format", default=formats.ISO9660, choices=formats.FORMATS,
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


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(image_opts, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Entry point for ``oslo-config-generator --namespace ironic_configdrive``."""
    return [(GROUP, list(image_opts))]
