"""``ironic-configdrive-keys status`` and ``rewrap`` on a real Ironic database.

Ironic's own DB test base gives a real (sqlite) database with its schema; the command runs
in-process through its ``main`` with a configuration file, reads the nodes through Ironic's
objects and takes their locks with Ironic's TaskManager, as it does next to running
conductors.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import io
import json
import os
import stat
import uuid
from typing import Any
from unittest import mock

import fixtures
from ironic.conductor import task_manager
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils
from oslo_utils import uuidutils

from ironic_configdrive import keys, records
from ironic_configdrive.cli import keys as keys_cli
from ironic_configdrive.image import sealing
from tests.fixtures.logs import enable_all_loggers


class TestKeysCommand(db_base.DbTestCase):
    def _clear_attrs(self) -> None:
        # pytest's unittest runner sets the test method on the instance; keep it.
        keep = self._testMethodName
        for key in [k for k in self.__dict__ if k[0] != "_" and k != keep]:
            del self.__dict__[key]

    def setUp(self) -> None:
        super().setUp()
        enable_all_loggers()
        self.logs = self.useFixture(fixtures.FakeLogger())
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.old = keys.generate(f"{self.dir}/old.key")
        self.new = keys.generate(f"{self.dir}/new.key")
        self.stranger = keys.generate(f"{self.dir}/stranger.key")
        self.drive_keys: dict[str, bytes] = {}
        self.outputs: list[str] = []

    def _conf(self, old_key_files: list[str]) -> str:
        """What an operator writes into ironic.conf for a rotation."""
        path = f"{self.dir}/ironic.conf"
        with open(path, "w") as handle:
            handle.write(f"[configdrive]\nkey_file = {self.new.path}\n"
                         f"old_key_files = {','.join(old_key_files)}\n"
                         "key_file_create = False\n")
        return path

    def _node(self, kek: keys.Kek | None, *, sealed: bool = True) -> Any:
        node_uuid = uuidutils.generate_uuid()
        info: dict[str, Any] = {}
        if kek is not None or not sealed:
            key = sealing.new_key()
            self.drive_keys[node_uuid] = key
            stored = records.StoredRef(
                store="http", location=f"configdrive/{node_uuid}", sha256="0" * 64, size=1,
                sealed=sealed, wrapped_key=keys.Keyring(kek).wrap(key) if kek else None)
            record = records.DriveRecord(deploy_id=uuid.uuid4().hex, stored=stored)
            info[records.RECORD_KEY] = record.to_dict()
        return obj_utils.create_test_node(self.context, uuid=node_uuid, driver="fake-hardware",
                                          driver_internal_info=info)

    def _run(self, *argv: str) -> tuple[int, dict[str, Any], str]:
        out, err = io.StringIO(), io.StringIO()
        with mock.patch("sys.stdout", out), mock.patch("sys.stderr", err):
            code = keys_cli.main(list(argv))
        self.outputs += [out.getvalue(), err.getvalue()]
        report = json.loads(out.getvalue()) if "--json" in argv and code != 2 else {}
        return code, report, err.getvalue()

    def _fingerprints(self, node: Any) -> set[str]:
        node.refresh()
        record = records.load(node)
        assert record is not None
        return {keys.fingerprint_of(w) for w in record.wrapped_keys()}

    def _assert_no_key_material(self) -> None:
        secrets = [kek.material.hex() for kek in (self.old, self.new, self.stranger)]
        secrets += [key.hex() for key in self.drive_keys.values()]
        secrets += [sealing.encode_key(key) for key in self.drive_keys.values()]
        for text in [*self.outputs, self.logs.output]:
            for secret in secrets:
                self.assertNotIn(secret, text)

    def test_status_rewrap_until_nothing_is_left_on_old_keys(self) -> None:
        old_nodes = [self._node(self.old) for _ in range(2)]
        locked = self._node(self.old)
        current = self._node(self.new)
        stranger = self._node(self.stranger)
        self._node(None)  # no config drive
        self._node(None, sealed=False)  # a drive stored without encryption
        conf = self._conf([self.old.path])
        old, new = self.old.fingerprint, self.new.fingerprint

        code, status, _ = self._run("--config-file", conf, "status", "--json")
        self.assertEqual(0, code)
        self.assertEqual({old: 3, new: 1, self.stranger.fingerprint: 1},
                         status["nodes_by_key"])
        self.assertEqual((new, [old], 5, 4),
                         (status["current_key"], status["retired_keys"],
                          status["nodes_with_keys"], status["nodes_on_old_keys"]))

        code, dry, err = self._run("--config-file", conf, "rewrap", "--dry-run", "--json")
        self.assertEqual((1, 3, 1), (code, dry["rewrapped"], dry["failed"]))
        self.assertEqual({old}, self._fingerprints(old_nodes[0]))  # nothing changed
        self.assertIn(stranger.uuid, err)

        # A conductor holds one node: it is skipped and counted, never waited for.
        with task_manager.acquire(self.context, locked.uuid, shared=False,
                                  load_driver=False):
            code, first, err = self._run("--config-file", conf, "rewrap", "--json")
        self.assertEqual(1, code)
        self.assertEqual((2, 1, 1, 2), (first["rewrapped"], first["locked"],
                                        first["failed"], first["nodes_on_old_keys"]))
        self.assertEqual({new: 3, old: 1, self.stranger.fingerprint: 1},
                         first["nodes_by_key"])
        self.assertIn(f"node {stranger.uuid}", err)
        self.assertIn(f"fingerprint {self.stranger.fingerprint}", err)
        self.assertIn("old_key_files", err)
        only_new = keys.Keyring(self.new)
        for node in old_nodes:
            self.assertEqual({new}, self._fingerprints(node))
            record = records.load(node)
            assert record is not None and record.stored is not None
            self.assertEqual(self.drive_keys[node.uuid],
                             only_new.unwrap(str(record.stored.wrapped_key)))
        self.assertEqual({new}, self._fingerprints(current))
        locked.refresh()
        self.assertIsNone(locked.reservation)

        # The operator finds the stranger's key and lists it too; the lock is gone.
        conf = self._conf([self.old.path, self.stranger.path])
        code, second, _ = self._run("--config-file", conf, "rewrap", "--json")
        self.assertEqual((0, 2, 0, 0, 0), (code, second["rewrapped"], second["locked"],
                                           second["failed"], second["nodes_on_old_keys"]))
        code, human, _ = self._run("--config-file", conf, "status")
        self.assertEqual(0, code)
        text = self.outputs[-2]
        self.assertIn(f"{new}       5 node(s)  current", text)
        self.assertIn("nodes on old keys: 0", text)
        self._assert_no_key_material()

    def test_configuration_errors_exit_2_and_create_nothing(self) -> None:
        self._node(self.old)
        os.unlink(self.new.path)  # key_file missing: the command never makes one up
        code, _, err = self._run("--config-file", self._conf([self.old.path]), "rewrap")
        self.assertEqual(2, code)
        self.assertIn(f"{self.new.path} does not exist", err)
        self.assertFalse(os.path.exists(self.new.path))
        code, _, err = self._run("--config-file", f"{self.dir}/missing.conf", "status")
        self.assertEqual(2, code)
        self.assertIn("cannot read the configuration", err)

    def test_generate(self) -> None:
        path = f"{self.dir}/made.key"
        code, _, _ = self._run("generate", path)
        self.assertEqual(0, code)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        made = keys.read_kek(path, create=False)
        self.assertIn(made.fingerprint, self.outputs[-2])
        code, _, err = self._run("generate", path)
        self.assertEqual(1, code)
        self.assertIn("already exists", err)
        self.assertEqual(made, keys.read_kek(path, create=False))
        self.assertNotIn(made.material.hex(), "".join(self.outputs))
