"""`baremetal node validate` of the deploy interface, inside Ironic, refuses an HTTP root
whose web server lists directories (a real listing server on loopback)."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import os
from pathlib import Path

from ironic.common import exception
from ironic.conductor import task_manager

from tests.functional.store.conftest import ListingHandler, serve_directory
from tests.functional.test_deploy_ironic import JSON_DRIVE, DeployInsideIronicBase


class TestListingHttpRoot(DeployInsideIronicBase):
    def test_validate_refuses_a_listing_web_server(self) -> None:
        node = self._node(JSON_DRIVE)
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.validate(task)  # the fixture's server does not list
        # ...and validate really asked it: the folder, then the probe directory below it.
        folder, probe = self.http_root.fetched
        self.assertEqual("/configdrive/", folder)
        self.assertTrue(probe.startswith("/configdrive/listing-probe-"))
        self.assertEqual(["index.html"], os.listdir(f"{self.http_root.path}/configdrive"))
        for root, url in serve_directory(Path(self.http_root.path), ListingHandler):
            self.config(http_url=url, group="deploy")
            with task_manager.acquire(self.context, node.uuid) as task:
                exc = self.assertRaises(exception.InvalidParameterValue,
                                        task.driver.deploy.validate, task)
            text = str(exc)
            self.assertIn("the config drive store is not usable", text)
            self.assertIn(f"lists {url}/configdrive/", text)
            self.assertIn("Options -Indexes", text)
            self.assertIn("autoindex off", text)
            self.assertTrue((root / "configdrive" / "index.html").is_file())
