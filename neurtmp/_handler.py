"""Calling user handlers: objects with `handle(...)` or plain callables."""

from __future__ import annotations

from typing import Any


def call_handler(handler: Any, *args: Any) -> Any:
    """Call `handler.handle(*args)`, or `handler(*args)` for a plain callable."""
    handle = getattr(handler, "handle", None)
    if handle is not None:
        return handle(*args)
    return handler(*args)


def is_threaded(handler: Any) -> bool:
    """Whether a render/frame handler asked to run in the thread pool."""
    return bool(getattr(handler, "threaded", False))
