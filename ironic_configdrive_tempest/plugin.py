"""Tempest's entry point (``tempest.test_plugins``) for the ironic-configdrive tests."""

from __future__ import annotations

import os
from typing import Any

from tempest.test_discover import plugins

from ironic_configdrive_tempest import config


class ConfigDriveTempestPlugin(plugins.TempestPlugin):
    def load_tests(self) -> tuple[str, str]:
        package_dir = os.path.dirname(os.path.abspath(__file__))
        test_dir = os.path.join(package_dir, "tests")
        top_level = os.path.dirname(package_dir)
        return test_dir, top_level

    def register_opts(self, conf: Any) -> None:
        conf.register_group(config.GROUP)
        conf.register_opts(config.OPTS, group=config.GROUP)

    def get_opt_lists(self) -> list[tuple[str, list[Any]]]:
        return [(group.name, opts) for group, opts in config.list_opts()]
