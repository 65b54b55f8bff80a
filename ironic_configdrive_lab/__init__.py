"""A local bare-metal lab: real Ironic, a real agent on a loop disk, all on loopback.

Run by ``ironic-configdrive-lab up|deploy|undeploy|status|down --workdir DIR``. Everything it
writes lives under DIR; see :mod:`ironic_configdrive_lab.workdir` for the layout.
"""
