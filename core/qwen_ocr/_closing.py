"""``Closing``: the ``with`` block of the objects that hold something until closed (a client's connections, a batch
job's client, an open document): ``__enter__`` gives the object, ``__exit__`` calls its ``close()``.

Example::

    class Holder(Closing):
        def close(self) -> None:
            ...

    with Holder() as held:
        ...                     # held.close() at the end of the block, also after an error
"""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self

__all__ = ["Closing"]


class Closing:
    """A context manager whose exit is :meth:`close`."""

    def close(self) -> None:
        """Release what the object holds (each subclass says what)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
