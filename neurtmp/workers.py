"""The worker processes of `neurtmp serve --workers N`, and the supervisor that keeps them.

Every worker is `neurtmp serve` run again with ``--worker INDEX``, listening on the same
port (SO_REUSEPORT: the kernel spreads connections over them). Worker 0 holds every
stream: it also listens on a private loopback port, and the other workers are edges of it
(a publish on them is forwarded to it, their players pull from it), so a player gets any
stream whichever worker the kernel gave it. The supervisor holds both ports for as long
as it runs (bound with SO_REUSEPORT, not listening), so no other program can take them,
not even while a worker restarts.

The supervisor restarts a worker that exits or hangs, with growing delays. On SIGUSR2 it
replaces every worker, one at a time (the edges first, worker 0 last): a new process
starts beside the old one, and once it serves the old one gets SIGTERM, so it stops
accepting, asks its clients that handle Enhanced RTMP reconnect requests to reconnect
(they land on a serving worker and switch over at a key frame, their players see no gap)
and lets the rest finish within its shutdown grace. New code and every option of the
config file take effect so. SIGHUP is passed on to every worker (each reloads its access
rules); SIGINT and SIGTERM stop them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from neurtmp.names import host_port

__all__ = ["START_TIMEOUT", "Supervisor", "Worker", "socket_address"]

#: Seconds a worker has to print its "listening on" line before it is deemed hung.
START_TIMEOUT = 30.0
#: Growing delays before a dead worker is restarted: first, and at most (seconds).
RESTART_FIRST = 0.5
RESTART_MAX = 30.0
#: Seconds a worker must have run for its next restart delay to start again from the first.
HELD = 30.0
#: Seconds between the supervisor's looks at its workers.
INTERVAL = 0.1
#: Seconds beyond its shutdown grace a replaced worker may take to exit before it is killed.
DRAIN_MARGIN = 5.0


def socket_address(sock: socket.socket) -> str:
    """ "HOST:PORT" ("[V6]:PORT") of a bound socket."""
    host, port = sock.getsockname()[:2]
    return host_port(host, port)


def _say(line: str) -> None:
    print(f"neurtmp serve: {line}", file=sys.stderr, flush=True)


class Worker:
    """One worker process: started, deemed serving once it prints its "listening on" line
    (killed when it prints none within `start_timeout`), restarted with growing delays
    when it exits, and replaced on request (`replace`).

    Args:
        index: the worker's number (0 holds every stream).
        command: the command line of a worker, without ``--worker INDEX``.
        start_timeout: seconds it has to start serving.
        drain_timeout: seconds a replaced process may take to exit after SIGTERM.
    """

    def __init__(self, index: int, command: Sequence[str], start_timeout: float, drain_timeout: float) -> None:
        from neurtmp.relay import Backoff

        self.index = index
        self.command = [*command, "--worker", str(index)]
        self.start_timeout = start_timeout
        self.drain_timeout = drain_timeout
        self.process: subprocess.Popen[bytes] | None = None
        #: Whether the running process printed its "listening on" line.
        self.serving = False
        #: The process a replacement is superseding: serving until the new one serves,
        #: then draining (SIGTERM sent at `_draining_since`).
        self.old: subprocess.Popen[bytes] | None = None
        self._draining_since: float | None = None
        self._started_at = 0.0
        self._output = b""
        self._backoff = Backoff(RESTART_FIRST, RESTART_MAX)
        self._restart_at: float | None = None

    @property
    def replacing(self) -> bool:
        """A replacement is under way: the new process is starting, or the old draining."""
        return self.old is not None

    def spawn(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self.serving = False
        self._output = b""
        self._started_at = time.monotonic()
        self._restart_at = None

    def replace(self) -> bool:
        """Start a new process beside the serving one (see the module docstring); False
        when there is none serving to replace."""
        if self.process is None or not self.serving or self.old is not None:
            return False
        self.old = self.process
        self.spawn()
        return True

    def check(self) -> str | None:
        """Advance this worker (note its startup line, restart it when its delay is over,
        retire a replaced process); returns what happened when worth a line, else None."""
        now = time.monotonic()
        if self.old is not None and self._draining_since is not None:
            retired = self._check_draining(now)
            if retired is not None:
                return retired
        if self.process is None:
            if self._restart_at is not None and now >= self._restart_at:
                self.spawn()
            return None
        if not self.serving:
            return self._check_start(now)
        if self.process.poll() is not None:
            return self._stopped(f"exited with {self.process.returncode}", now)
        return None

    def _check_start(self, now: float) -> str | None:
        assert self.process is not None and self.process.stdout is not None
        try:
            self._output += os.read(self.process.stdout.fileno(), 4096)
        except BlockingIOError:  # nothing new yet
            pass
        if b"listening on" in self._output and b"\n" in self._output.partition(b"listening on")[2]:
            self.serving = True
            _say(f"worker {self.index} serving (pid {self.process.pid})")
            if self.old is not None:  # a replacement: the old process drains from now on
                self.old.terminate()
                self._draining_since = now
                return f"worker {self.index} replaced: pid {self.old.pid} drains its clients"
            return None
        if self.process.poll() is not None:
            return self._stopped(f"exited with {self.process.returncode} before it was serving", now)
        if now - self._started_at > self.start_timeout:
            self.process.kill()
            self.process.wait()
            return self._stopped(f"printed no 'listening on' line within {self.start_timeout:g} s; killed it", now)
        return None

    def _check_draining(self, now: float) -> str | None:
        assert self.old is not None and self._draining_since is not None
        code = self.old.poll()
        if code is None and now - self._draining_since > self.drain_timeout:
            self.old.kill()
            code = self.old.wait()
        if code is None:
            return None
        old, self.old, self._draining_since = self.old, None, None
        if old.stdout is not None:
            old.stdout.close()
        return f"worker {self.index}'s old process (pid {old.pid}) exited with {code}"

    def _stopped(self, reason: str, now: float) -> str:
        """Forget the process; returns `reason` with the worker's name. A replacement that
        failed leaves the old process serving."""
        if self.serving and now - self._started_at >= HELD:
            self._backoff.reset()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        self.serving = False
        if self.old is not None and self._draining_since is None:
            self.process, self.old, self.serving = self.old, None, True
            return f"worker {self.index}'s replacement {reason}; pid {self.process.pid} goes on serving"
        return f"worker {self.index} {reason}"

    def restart_later(self) -> float:
        """Schedule the restart after the next delay of the backoff; returns the delay."""
        delay = self._backoff.next()
        self._restart_at = time.monotonic() + delay
        return delay

    def signal(self, signum: int) -> None:
        """Send `signum` to its processes that are running."""
        for process in (self.process, self.old):
            if process is not None and process.poll() is None:
                process.send_signal(signum)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        """Wait for its processes until `deadline` (time.monotonic()); kill them then."""
        for process in (self.process, self.old):
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Supervisor:
    """Runs `count` workers (see the module docstring) until SIGINT or SIGTERM.

    Args:
        command: a worker's command line, without ``--worker INDEX`` (it gets ``--listen``
            and ``--worker-origin`` from `run`).
        count: how many workers.
        start_timeout: seconds a worker has to start serving.
        shutdown_grace: the workers' shutdown grace (seconds).
    """

    def __init__(self, command: Sequence[str], count: int, start_timeout: float, shutdown_grace: float) -> None:
        self.command = list(command)
        self.count = count
        self.start_timeout = start_timeout
        self.shutdown_grace = shutdown_grace
        self.workers: list[Worker] = []
        self._stopping = False
        self._replace_asked = False
        self._reload_asked = False
        #: Workers still to replace, in order, and the one being replaced now.
        self._to_replace: list[Worker] = []
        self._replacing: Worker | None = None

    def run(self, holder: socket.socket) -> int:
        """Start the workers on `holder`'s port (bound, SO_REUSEPORT, not listening) and
        keep them; 0, or 2 after one line on stderr when one cannot start."""
        with hold_private_port() as private:
            shown = socket_address(holder)
            command = [*self.command, "--workers", "1", "--listen", shown, "--worker-origin", socket_address(private)]
            drain = self.shutdown_grace + DRAIN_MARGIN
            self.workers = [Worker(index, command, self.start_timeout, drain) for index in range(self.count)]
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self._stop())
            signal.signal(signal.SIGUSR2, lambda *_: self._ask("_replace_asked"))
            signal.signal(signal.SIGHUP, lambda *_: self._ask("_reload_asked"))
            try:
                _say(f"worker 0 holds every stream; the other workers reach it on {socket_address(private)}")
                status = self._start()
                if status == 0 and not self._stopping:
                    print(f"listening on rtmp://{shown} ({self.count} workers)", flush=True)
                    self._keep()
            finally:
                for worker in self.workers:
                    worker.stop()
                deadline = time.monotonic() + self.shutdown_grace + DRAIN_MARGIN
                for worker in self.workers:
                    worker.wait(deadline)
        return status

    def _stop(self) -> None:
        self._stopping = True

    def _ask(self, flag: str) -> None:
        setattr(self, flag, True)

    def _start(self) -> int:
        for worker in self.workers:
            worker.spawn()
        while not self._stopping and not all(worker.serving for worker in self.workers):
            for worker in self.workers:
                problem = worker.check()
                if problem is not None:
                    _say(problem)
                    return 2
            time.sleep(INTERVAL)
        return 0

    def _keep(self) -> None:
        """Restart workers that exit or hang, with growing delays; replace them on
        SIGUSR2, pass SIGHUP on; until SIGINT/SIGTERM."""
        while not self._stopping:
            self._take_requests()
            for worker in self.workers:
                news = worker.check()
                if news is None or self._stopping:
                    continue
                if worker.process is None:  # it died, or a restart did not come up
                    news = f"{news}; restarting in {worker.restart_later():g} s"
                _say(news)
            self._replace_next()
            time.sleep(INTERVAL)

    def _take_requests(self) -> None:
        if self._reload_asked:
            self._reload_asked = False
            for worker in self.workers:
                worker.signal(signal.SIGHUP)
            _say(f"SIGHUP passed on to {self.count} workers")
        if self._replace_asked:
            self._replace_asked = False
            if self._to_replace or self._replacing is not None:
                _say("already replacing the workers")
            else:
                self._to_replace = [*self.workers[1:], self.workers[0]]  # worker 0, holding the streams, last
                _say(f"replacing {self.count} workers, one at a time")

    def _replace_next(self) -> None:
        """Start the next replacement once the one under way is over."""
        if self._replacing is not None:
            if self._replacing.replacing:
                return
            self._replacing = None
            if not self._to_replace:
                _say("every worker replaced")
        while self._to_replace and self._replacing is None:
            worker = self._to_replace.pop(0)
            if worker.replace():
                self._replacing = worker
            else:
                _say(f"worker {worker.index} is not serving now: not replaced")


def hold_private_port() -> socket.socket:
    """A loopback port for worker 0's private listener, bound with SO_REUSEPORT (and
    without SO_REUSEADDR) so that only worker 0 can bind it beside us."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock
