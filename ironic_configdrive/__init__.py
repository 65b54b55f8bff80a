"""Config drives for OpenStack bare metal (Ironic deploy interface, agent extension, CLI)."""
