"""Example inputs shipped with the package (``ironic-configdrive example``)."""
