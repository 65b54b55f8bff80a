"""Tempest plugin for ironic-configdrive: deploy with a config drive, verify, tear down."""
