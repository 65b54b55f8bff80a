"""ironic-python-agent extension that writes, inspects and removes config drives.

Depends only on the image core (:mod:`ironic_configdrive.image`), IPA, requests and pyudev;
never on Ironic itself, so the agent ramdisk stays small.
"""
