"""The agent tests' loop-disk and HTTP(S) server fixtures, shared rather than copied."""

from tests.functional.agent_ext.conftest import (  # noqa: F401  (fixtures)
    loopdisk,
    server,
    tls_files,
    tls_server,
)
