"""HandlerChain: an ordered set of handlers, read far more often than changed.

Publish and media handlers form chains (each stream's, then the server's), and play
observers one per server. The media chain is walked for every published message, so a
chain keeps its members as a tuple rebuilt on the rare change: walking it costs no copy
and is safe while a handler adds or removes another.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["HandlerChain"]

H = TypeVar("H")


class HandlerChain(Generic[H]):
    """Handlers in the order added, each once."""

    __slots__ = ("handlers",)

    def __init__(self) -> None:
        #: The members, oldest first (a tuple: iterate it freely).
        self.handlers: tuple[H, ...] = ()

    def add(self, handler: H) -> None:
        if handler not in self.handlers:
            self.handlers = (*self.handlers, handler)

    def remove(self, handler: H) -> None:
        if handler in self.handlers:
            self.handlers = tuple(h for h in self.handlers if h is not handler and h != handler)

    def __iter__(self) -> Iterator[H]:
        return iter(self.handlers)

    def __len__(self) -> int:
        return len(self.handlers)

    def __bool__(self) -> bool:
        return bool(self.handlers)
