"""Writing a drive as a Swift object: its metadata, the upload, and what a failed one left."""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Final

from ironic_configdrive.store.swift.errors import TRANSPORT_ERRORS, describe, is_not_found

LOG = logging.getLogger(__package__)

#: Object metadata an operator can judge an object by (besides its name).
META_PREFIX: Final = "X-Object-Meta-Configdrive-"


class Body(bytes):
    """An upload body swiftclient sends in one piece and may retry.

    swiftclient retries only bodies it can rewind (``tell``/``seek``), and streams file
    objects in 8 KiB reads (a BytesIO costs a tenth of a millisecond per 60 KB put). Bytes
    go out in one write and, immutable, need no rewinding: this says so.
    """

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


def headers(*, sha256: str, size: int, node: str, deploy_id: str, host: str | None,
            delete_after: int) -> dict[str, str]:
    """Metadata of a stored drive, and ``X-Delete-After`` as a backstop for teardown."""
    result = {f"{META_PREFIX}Sha256": sha256, f"{META_PREFIX}Size": str(size),
              f"{META_PREFIX}Node": node, f"{META_PREFIX}Deploy-Id": deploy_id}
    if host:
        result[f"{META_PREFIX}Conductor"] = host
    if delete_after:
        result["X-Delete-After"] = str(delete_after)
    return result


def upload(conn: Any, container: str, obj: str, data: bytes, content_type: str,
           headers: dict[str, str]) -> None:
    conn.put_object(container, obj, Body(data), content_length=len(data),
                    etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                    content_type=content_type, headers=headers)


def remove_partial(conn: Any, node: str, container: str, obj: str, delete_after: int) -> str:
    """Delete what a failed PUT may have left; return a note for the error message."""
    try:
        conn.delete_object(container, obj)
    except TRANSPORT_ERRORS as exc:
        if is_not_found(exc):
            return "nothing was left behind"
        LOG.warning("Could not delete partial config drive object %s/%s of node %s: %s",
                    container, obj, node, describe(exc))
        expiry = (f"it expires in {delete_after}s (X-Delete-After)"
                  if delete_after else "delete it by hand")
        return f"object {container}/{obj} may remain: {expiry}"
    return "the partial object was deleted"
