"""Inline and file sources are held to the same wire cap as downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_ext.errors import InvalidInputError
from agent_ext.fetch import WIRE_CAP
from agent_ext.sources import open_source


def test_inline_data_over_the_wire_cap_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidInputError, match=f"inline config drive data is larger than "
                                                f"{WIRE_CAP} bytes"):
        open_source(None, b"A" * (WIRE_CAP + 1), None, None)
    assert open_source(None, b"A" * 8, None, None).description == "inline data (8 bytes)"


def test_a_file_over_the_wire_cap_stops_one_byte_past_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.b64"
    with open(path, "wb") as handle:
        handle.truncate(WIRE_CAP + 4096)  # sparse: no disk space used
    read = 0
    with pytest.raises(InvalidInputError, match="huge.b64 is larger than"):
        for chunk in open_source(None, None, str(path), None).chunks:
            read += len(chunk)
    assert read <= WIRE_CAP
