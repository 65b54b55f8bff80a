"""The Nova variant: `nova boot --config-drive` onto a bare-metal node, checked, deleted.

Nova builds the drive and hands it to Ironic; our deploy interface takes it from there. What
tempest checks: the server becomes ACTIVE on ``[ironic_configdrive]node`` (its
``instance_uuid``), the node's config drive record names the store, sha256, size and the
exposure; with ``disk_image`` the config-2 partition holds exactly the stored bytes and the
meta_data Nova wrote (the server's uuid). After the server is deleted, automated cleaning
removes the record and, with ``disk_image``, zeroes those bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from tempest import config, test
from tempest.common import waiters
from tempest.lib import decorators
from tempest.lib.common import api_microversion_fixture
from tempest.lib.common.utils import data_utils

from ironic_configdrive_tempest.tests.scenario.test_configdrive import (
    _SSH_KEY,
    baremetal_client,
    check_drive_on_disk,
)

CONF = config.CONF
#: ``networks: none`` (a server without ports) needs compute API 2.37.
COMPUTE_MICROVERSION = "2.37"


class NovaConfigDriveTest(test.BaseTestCase):
    """One server with a config drive through Nova, on the named node, then deleted."""

    credentials = ["admin"]

    @classmethod
    def skip_checks(cls) -> None:
        super().skip_checks()
        opts = CONF.ironic_configdrive
        if not opts.nova:
            raise cls.skipException("[ironic_configdrive]nova is False")
        if not CONF.service_available.nova:
            raise cls.skipException("Nova is not available")
        if not (opts.node and CONF.compute.flavor_ref and CONF.compute.image_ref):
            raise cls.skipException("[ironic_configdrive]node, [compute]flavor_ref and "
                                    "image_ref must be set")

    @classmethod
    def setup_clients(cls) -> None:
        super().setup_clients()
        cls.servers = cls.os_admin.servers_client
        cls.keypairs = cls.os_admin.keypairs_client
        cls.baremetal = baremetal_client(cls.os_admin)

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion=COMPUTE_MICROVERSION))

    def _wait_node(self, expected: str, timeout: int) -> dict[str, Any]:
        return self.baremetal.wait_for_provision_state(
            CONF.ironic_configdrive.node, expected, timeout=timeout,
            interval=CONF.ironic_configdrive.poll_interval,
            fail_states=("deploy failed", "clean failed", "error"))

    def _delete_server(self, server_id: str) -> None:
        self.servers.delete_server(server_id)
        waiters.wait_for_server_termination(self.servers, server_id)

    @decorators.idempotent_id("0f4d9a52-6c11-4e0b-9a55-3d2f8e7c4b10")
    @decorators.attr(type="slow")
    def test_server_with_configdrive_and_delete(self) -> None:
        opts = CONF.ironic_configdrive
        node = self.baremetal.show_node(opts.node)
        self.assertEqual("available", node["provision_state"],
                         f"node {opts.node} must be available to run this scenario")
        key_name = data_utils.rand_name("cd-key")
        self.keypairs.create_keypair(name=key_name, public_key=_SSH_KEY)
        self.addCleanup(self.keypairs.delete_keypair, key_name)
        name = data_utils.rand_name("cd-server")
        user_data = "#cloud-config\nfinal_message: ironic-configdrive tempest nova\n"
        server = self.servers.create_server(
            name=name, imageRef=CONF.compute.image_ref, flavorRef=CONF.compute.flavor_ref,
            config_drive=True, key_name=key_name, networks="none",
            user_data=base64.b64encode(user_data.encode()).decode())["server"]
        self.addCleanup(self._delete_server_if_present, server["id"])
        waiters.wait_for_server_status(self.servers, server["id"], "ACTIVE")

        deployed = self.baremetal.show_node(opts.node)
        self.assertEqual(server["id"], deployed["instance_uuid"],
                         f"the server did not land on node {opts.node}")
        record = deployed["driver_internal_info"].get("configdrive")
        self.assertIsInstance(record, dict, "no config drive record after the build")
        stored = record.get("stored")
        self.assertIsInstance(stored, dict, f"nothing stored for the drive: {record}")
        self.assertRegex(str(stored.get("sha256")), "^[0-9a-f]{64}$")
        mechanisms = [exposure.get("mechanism") for exposure in record.get("exposures", [])]
        self.assertTrue(mechanisms, f"the drive was never exposed: {record}")
        span = None
        if opts.disk_image and mechanisms[-1] == "partition":
            span = self._check_drive_on_disk(opts.disk_image, stored, server["id"], name)

        self._delete_server(server["id"])
        undeployed = self._wait_node("available", opts.undeploy_timeout)
        if opts.expect_erase:
            self.assertNotIn("configdrive", undeployed["driver_internal_info"],
                             "config drive record left after the delete and cleaning")
            if span is not None:
                from ironic_configdrive_tempest import disk

                self.assertTrue(disk.is_zero(opts.disk_image, *span),
                                f"config drive bytes left on {opts.disk_image} at {span}")

    def _delete_server_if_present(self, server_id: str) -> None:
        from tempest.lib import exceptions

        try:
            self._delete_server(server_id)
        except exceptions.NotFound:
            pass

    def _check_drive_on_disk(self, disk_image: str, stored: dict[str, Any],
                             server_id: str, name: str) -> tuple[int, int]:
        span, hostname = check_drive_on_disk(self, disk_image, stored, server_id)
        # Nova's hostname is the server's name, sanitised, with its dhcp_domain appended.
        self.assertEqual(name.lower(), hostname.split(".", 1)[0],
                         f"the drive's hostname {hostname!r} is not the server's {name!r}")
        return span
