"""A real ``hymirec serve`` process killed with SIGKILL in the middle of a load of event posts
loses none of the events it acknowledged: after a restart on the same store, all are there."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serving_runs import train_run

pytestmark = pytest.mark.slow
WRITERS = 4
KILL_AFTER = 60  # acknowledged events before the kill


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run, store, port, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "hymirec.cli", "serve", "--run", str(run), "--port", str(port),
               "--store", f"sqlite:{store}", "--no-import"]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("the server did not become ready in 120 s")


def test_acknowledged_events_survive_kill_9(tmp_path, monkeypatch):
    monkeypatch.setenv("HYMIREC_DATA_DIR", str(tmp_path / "cache"))
    run = train_run(tmp_path, "sasrec")
    store, port = tmp_path / "serve.sqlite", _free_port()
    acknowledged: dict[str, list[str]] = {f"w{i}": [] for i in range(WRITERS)}
    enough = threading.Event()

    def write(user: str) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for n in range(100_000):
                event = {"event_id": f"{user}-{n}", "item": str(1 + n % 20)}
                try:
                    response = client.post(f"/users/{user}/events", json={"events": [event]})
                except httpx.TransportError:
                    return  # the server is gone: this event was never acknowledged
                assert response.status_code == 200, response.text
                acknowledged[user].append(event["event_id"])
                if sum(map(len, acknowledged.values())) >= KILL_AFTER:
                    enough.set()

    with open(tmp_path / "server.log", "w") as log:
        server = _start(run, store, port, log)
        writers = [threading.Thread(target=write, args=(user,)) for user in acknowledged]
        for thread in writers:
            thread.start()
        assert enough.wait(120), "the load did not reach the kill point"
        os.kill(server.pid, signal.SIGKILL)  # mid-load: the writers are still posting
        server.wait()
        for thread in writers:
            thread.join(30)
        server = _start(run, store, port, log)
        try:
            for user, ids in acknowledged.items():
                stored = httpx.get(f"http://127.0.0.1:{port}/users/{user}/events", params={"limit": 1000}).json()
                stored_ids = [e["event_id"] for e in stored["events"]]
                assert set(ids) <= set(stored_ids), f"{user}: lost {sorted(set(ids) - set(stored_ids))}"
                # What was stored is in the order it was sent; at most the in-flight one was not acknowledged.
                assert stored_ids == sorted(stored_ids, key=lambda e: int(e.split("-")[1]))
                assert len(stored_ids) - len(ids) <= 1
        finally:
            server.terminate()
            server.wait(30)
    assert sum(map(len, acknowledged.values())) >= KILL_AFTER
