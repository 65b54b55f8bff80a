"""Deploy a bare-metal node with a config drive, check it, tear down, check it is gone.

What tempest can see of a deployed node, and therefore what is checked:
- through the Bare Metal API: the node becomes active through the ``configdrive`` deploy
  interface, its ``driver_internal_info['configdrive']`` record names the store, the sha256
  and size of the image and the exposure mechanism used; after undeploy (with automated
  cleaning) the record is gone;
- on the node's disk, when ``[ironic_configdrive]disk_image`` gives tempest a raw file that
  *is* that disk (the local lab): exactly one partition labelled config-2 whose first bytes
  hash to the recorded sha256 and hold the meta_data we sent (uuid, hostname, key); after
  undeploy those bytes are zeros.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from tempest import config, test
from tempest.lib import decorators

from ironic_configdrive_tempest import clients

CONF = config.CONF

_SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFrGq8Fyn7rjSyMztc4/9y0zDvG+k+4tyCOkI7+p6ANm "
            "tempest@ironic-configdrive")


def baremetal_client(os_admin: Any) -> clients.BaremetalClient:
    """The Bare Metal API as ``[ironic_configdrive]auth`` says (``os_admin``: keystone)."""
    opts = CONF.ironic_configdrive
    common = {
        "disable_ssl_certificate_validation":
            CONF.identity.disable_ssl_certificate_validation,
        "ca_certs": CONF.identity.ca_certificates_file,
        "trace_requests": CONF.debug.trace_requests,
    }
    if opts.auth == "noauth":
        return clients.noauth_client(opts.endpoint, opts.api_microversion, **common)
    return clients.BaremetalClient(
        os_admin.auth_provider, opts.catalog_type, CONF.identity.region,
        opts.api_microversion, endpoint_type=CONF.identity.v3_endpoint_type, **common)


class ConfigDriveDeployTest(test.BaseTestCase):
    """One node, one deploy with a JSON config drive, one undeploy."""

    credentials: list[Any] = []

    @classmethod
    def skip_checks(cls) -> None:
        super().skip_checks()
        opts = CONF.ironic_configdrive
        if not opts.enabled:
            raise cls.skipException("[ironic_configdrive]enabled is False")
        if not opts.node or not opts.image_source:
            raise cls.skipException("[ironic_configdrive]node and image_source must be set")
        if opts.auth == "noauth" and not opts.endpoint:
            raise cls.skipException("[ironic_configdrive]auth = noauth needs endpoint")

    @classmethod
    def setup_credentials(cls) -> None:
        if CONF.ironic_configdrive.auth == "keystone":
            cls.credentials = ["admin"]
        super().setup_credentials()

    @classmethod
    def setup_clients(cls) -> None:
        super().setup_clients()
        cls.baremetal = baremetal_client(getattr(cls, "os_admin", None))

    # -- helpers ------------------------------------------------------------------------------

    def _wait(self, ident: str, expected: str, timeout: int,
              fail_states: tuple[str, ...]) -> dict[str, Any]:
        return self.baremetal.wait_for_provision_state(
            ident, expected, timeout=timeout, interval=CONF.ironic_configdrive.poll_interval,
            fail_states=fail_states)

    def _undeploy_if_deployed(self, ident: str) -> None:
        node = self.baremetal.show_node(ident)
        if node.get("provision_state") in ("active", "deploy failed"):
            self.baremetal.set_provision_state(ident, "deleted")
            self._wait(ident, "available", CONF.ironic_configdrive.undeploy_timeout,
                       ("clean failed", "error"))

    def _prepare_node(self) -> dict[str, Any]:
        opts = CONF.ironic_configdrive
        node = self.baremetal.show_node(opts.node)
        self.assertEqual("available", node["provision_state"],
                         f"node {opts.node} must be available to run this scenario")
        patch: list[dict[str, Any]] = [
            {"op": "add", "path": "/instance_info/image_source", "value": opts.image_source},
        ]
        if opts.image_checksum:
            patch.append({"op": "add", "path": "/instance_info/image_checksum",
                          "value": opts.image_checksum})
        if opts.image_disk_format:
            patch.append({"op": "add", "path": "/instance_info/image_disk_format",
                          "value": opts.image_disk_format})
        if opts.exposure:
            patch.append({"op": "add", "path": "/instance_info/configdrive_exposure",
                          "value": opts.exposure})
        restore: list[dict[str, Any]] = []
        if opts.driver and node.get("driver") != opts.driver:
            patch.append({"op": "replace", "path": "/driver", "value": opts.driver})
            restore.append({"op": "replace", "path": "/driver", "value": node.get("driver")})
        if node.get("deploy_interface") != "configdrive":
            patch.append({"op": "replace", "path": "/deploy_interface",
                          "value": "configdrive"})
            restore.append({"op": "replace", "path": "/deploy_interface",
                            "value": node.get("deploy_interface")})
        if restore:
            # Cleanups run last-in first-out: this one after the undeploy below.
            self.addCleanup(self.baremetal.update_node, node["uuid"], restore)
        self.baremetal.update_node(node["uuid"], patch)
        return node

    # -- the scenario ---------------------------------------------------------------------------

    @decorators.idempotent_id("5b0b8d3e-8d7e-4a53-9d2c-1c4f0f6a7c21")
    @decorators.attr(type="slow")
    def test_deploy_with_configdrive_and_undeploy(self) -> None:
        opts = CONF.ironic_configdrive
        node = self._prepare_node()
        ident = node["uuid"]
        self.addCleanup(self._undeploy_if_deployed, ident)

        instance_uuid = str(uuid.uuid4())
        hostname = f"tempest-cd-{instance_uuid[:8]}"
        drive = {
            "meta_data": {"uuid": instance_uuid, "name": hostname, "hostname": hostname,
                          "public_keys": {"tempest": _SSH_KEY}},
            "user_data": "#cloud-config\nfinal_message: ironic-configdrive tempest\n",
        }
        self.baremetal.set_provision_state(ident, "active", configdrive=drive)
        deployed = self._wait(ident, "active", opts.deploy_timeout, ("deploy failed", "error"))

        record = deployed["driver_internal_info"].get("configdrive")
        self.assertIsInstance(record, dict, "no config drive record after deploy")
        stored = record.get("stored")
        self.assertIsInstance(stored, dict, f"nothing stored for the drive: {record}")
        self.assertRegex(str(stored.get("sha256")), "^[0-9a-f]{64}$")
        self.assertGreater(int(stored.get("size") or 0), 0)
        mechanisms = [exposure.get("mechanism") for exposure in record.get("exposures", [])]
        self.assertTrue(mechanisms, f"the drive was never exposed: {record}")
        if opts.exposure:
            self.assertEqual(opts.exposure, mechanisms[-1])

        span = None
        if opts.disk_image and mechanisms[-1] == "partition":
            span = self._check_drive_on_disk(opts.disk_image, stored, instance_uuid, hostname)

        self.baremetal.set_provision_state(ident, "deleted")
        undeployed = self._wait(ident, "available", opts.undeploy_timeout,
                                ("clean failed", "error"))
        if opts.expect_erase:
            self.assertNotIn("configdrive", undeployed["driver_internal_info"],
                             "config drive record left after undeploy and cleaning")
            if span is not None:
                from ironic_configdrive_tempest import disk

                self.assertTrue(disk.is_zero(opts.disk_image, *span),
                                f"config drive bytes left on {opts.disk_image} at {span}")

    def _check_drive_on_disk(self, disk_image: str, stored: dict[str, Any],
                             instance_uuid: str, hostname: str) -> tuple[int, int]:
        span, found = check_drive_on_disk(self, disk_image, stored, instance_uuid)
        self.assertEqual(hostname, found)
        return span


def check_drive_on_disk(case: Any, disk_image: str, stored: dict[str, Any],
                        instance_uuid: str) -> tuple[tuple[int, int], str]:
    """The config-2 partition of ``disk_image`` holds the stored bytes, a drive without
    problems for ``instance_uuid``; its span and the hostname in it."""
    # Imported here: listing the tests must not need the image core's dependencies.
    from ironic_configdrive.image import inspect as inspect_image
    from ironic_configdrive_tempest import disk

    part = disk.find_config_drive(disk_image)
    size = int(stored["size"])
    case.assertGreaterEqual(part.size, size, f"partition {part} smaller than the drive")
    data = disk.read_at(disk_image, part.offset, size)
    case.assertEqual(stored["sha256"], hashlib.sha256(data).hexdigest(),
                     f"bytes of {part} differ from the stored drive")
    report = inspect_image(data)
    case.assertEqual([], report.problems)
    case.assertEqual(instance_uuid, report.uuid)
    return (part.offset, size), str(report.hostname)
