"""A drive's files listed without being read: what checking a drive we did not build needs.

:func:`~.build.read_tree` hands out every file's bytes (a rebuild in another format needs
them); the rules of :mod:`.inspect` read only a few JSON documents, and a drive repeats its
user_data in about twenty version directories. A :class:`FileTree` knows every regular
file's path and size from the directory structures alone and reads a file's bytes only when
it is looked up, one file at a time, so checking a drive costs no memory for user_data
however large it is.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from types import TracebackType


class FileTree(Mapping[str, bytes], abc.ABC):
    """``{posix path: bytes}`` of a parsed image; a file is read when looked up.

    Lookups raise :class:`~.errors.InvalidMediaError` when the file cannot be read. Use as a
    context manager: a parser may hold resources until :meth:`close`.
    """

    @property
    @abc.abstractmethod
    def sizes(self) -> Mapping[str, int]:
        """Every regular file's size, as its directory entry gives it, by posix path."""

    @abc.abstractmethod
    def __getitem__(self, path: str) -> bytes: ...

    def __iter__(self) -> Iterator[str]:
        return iter(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def __contains__(self, path: object) -> bool:
        return path in self.sizes

    def close(self) -> None:
        """Release what the parser holds (nothing by default)."""

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
