"""Child processes of the ingest app (ffmpeg, the NVENC probe), started one way.

The standard library spawns with vfork/exec, so no fork handlers run in the child:
gevent's fork (gevent.subprocess) would run grpcio's, which break a child of a
gRPC-serving process. The pipes are wrapped for cooperative reads and writes, and
waiting polls, so nothing here blocks the hub. `Child.close()` closes the pipes at once
rather than leaving their descriptors to the garbage collector.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from typing import Any

import gevent
from gevent.fileobject import FileObjectPosix

__all__ = ["Child", "run", "spawn"]

#: Seconds between polls while waiting for a child to exit.
_POLL_SECONDS = 0.02


class Child:
    """A running child with cooperative pipes: `stdin` (binary, buffered), `stdout`, `stderr`."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self.stdin: Any = FileObjectPosix(process.stdin, "wb")
        self.stdout: Any = FileObjectPosix(process.stdout, "rb")
        self.stderr: Any = FileObjectPosix(process.stderr, "rb")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.process.poll()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for the child to exit, without blocking the hub; False
        when it is still running."""
        deadline = time.monotonic() + seconds
        while self.process.poll() is None:
            if time.monotonic() >= deadline:
                return False
            gevent.sleep(_POLL_SECONDS)
        return True

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        """Close the three pipes (their descriptors are released now)."""
        for pipe in (self.stdin, self.stdout, self.stderr):
            try:
                pipe.close()
            except (OSError, ValueError):
                pass  # a write end whose reader went away cannot flush; it is closed all the same


def spawn(command: Sequence[str]) -> Child:
    """Start `command` with its three standard streams piped to us.

    Raises:
        OSError: it could not be started (no such file, not executable, out of descriptors).
    """
    return Child(subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE))


def run(command: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
    """Run `command` to the end with no input; (exit status, stdout, stderr).

    Raises:
        OSError: it could not be started.
        TimeoutError: it ran longer than `timeout` seconds (it is killed).
    """
    child = spawn(command)
    readers = [gevent.spawn(child.stdout.read), gevent.spawn(child.stderr.read)]
    try:
        child.stdin.close()
        if not child.wait(timeout):
            child.kill()
            child.wait(5)
            raise TimeoutError(f"{command[0]} ran longer than {timeout:g} s")
        gevent.joinall(readers, timeout=5)
        out, err = (reader.value or b"" for reader in readers)
        return child.process.returncode, out, err
    finally:
        gevent.killall(readers)
        child.close()
