"""A real ``redis-server`` on loopback for the store tests, with every write fsynced to its
append-only file; the tests that need it are skipped, with the reason, where none can start."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hymirec.serving.process import free_port


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Start one in ``folder``; yields its URL; stops it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on PATH (Debian: apt-get install redis-server)")
    import redis

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                               "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None:
                    pytest.skip(f"redis-server exited with {server.returncode} at start")
                time.sleep(0.05)
        else:
            pytest.skip("redis-server did not answer within 5 s")
        yield url
    finally:
        server.terminate()
        server.wait(10)
