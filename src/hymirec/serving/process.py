"""A ``hymirec serve`` process on loopback, for tests and the load benchmark: started on a free
port, waited for until ready, killed or stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from hymirec.serving.config import LOOPBACK


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``hymirec serve --run RUN --store sqlite:STORE`` (plus ``options``) on a free loopback port,
    its output to ``log``."""

    def __init__(self, run: Path, store: Path, log: IO, options: list[str] | None = None) -> None:
        self.run, self.store, self.log, self.options = run, store, log, options or []
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen | None = None

    # Minutes, not seconds: a server started at low priority beside other jobs (the test suite
    # under `nice`) can take that long to import torch and load a model; an idle one takes seconds.
    def start(self, timeout: float = 600.0) -> ServerProcess:
        """Start the server and wait until ``/readyz`` answers 200."""
        command = [sys.executable, "-m", "hymirec.cli", "serve", "--run", str(self.run), "--port", str(self.port),
                   "--store", f"sqlite:{self.store}", *self.options]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode} before it was ready")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, and wait for the server's orderly shutdown."""
        self.process.terminate()
        self.process.wait(30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.stop()
