"""Run the real `eventtrigger` program as a subprocess for API and end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EventtriggerProcess:
    """`eventtrigger run --roles=...` on a free port; logs go to `log_path`."""

    def __init__(self, env: dict[str, str], roles: str, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._env = {
            **os.environ,
            **env,
            "EVENTTRIGGER_HTTP_HOST": "127.0.0.1",
            "EVENTTRIGGER_HTTP_PORT": str(self.port),
            "EVENTTRIGGER_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
        }
        self._roles = roles
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = env

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eventtrigger.cli", "run", f"--roles={self._roles}"],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"eventtrigger exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"eventtrigger did not answer in {timeout}s:\n{self.log_path.read_text()}"
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for a graceful exit; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
