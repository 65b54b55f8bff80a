"""nova-compute for the lab: Nova's own entry point, with the lab's ironic driver subclass
registered under the name Nova loads drivers from.

Nova 34 loads ``[DEFAULT]compute_driver`` as ``nova.virt.<name>`` only, so the subclass in
:mod:`ironic_nonic` is entered into ``sys.modules`` as ``nova.virt.ironic_nonic`` before
Nova's ``main`` runs (``compute_driver = ironic_nonic.IronicDriver``). Nothing of Nova is
patched or edited: the subclass is a new name next to Nova's own drivers, in this process.
Run by the Nova venv's python as ``python nova_compute.py --config-file ...``.
"""

from __future__ import annotations

import sys

# Nova's command module first: it sets up the process (monkey patching) before any driver
# module is imported.
from nova.cmd.compute import main  # isort: skip

import ironic_nonic  # noqa: I001

sys.modules["nova.virt.ironic_nonic"] = ironic_nonic

if __name__ == "__main__":
    sys.argv[0] = "nova-compute"
    sys.exit(main())
