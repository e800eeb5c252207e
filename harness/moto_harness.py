"""Start and control a local moto_server (moto 5.2.5) that emulates STS and IAM.

moto's control API used here:
  GET  /moto-api/             responds once the server is ready
  POST /moto-api/reset        wipes all state (but leaves the auth setting as it is)
  POST /moto-api/reset-auth   raw text body "0" turns SigV4 and IAM policy checking on,
                              "inf" turns it off; a form-encoded body gets HTTP 500

Usage:
    with MotoServer() as moto:
        moto.set_auth(True)
        ...

CLI: python -m harness.moto_harness [--port N] [--auth]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

log = logging.getLogger("harness.moto")

HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT = 20.0


def find_free_port(host: str = HOST) -> int:
    """Return a TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def moto_server_command() -> list[str]:
    """Return the command that runs moto_server from the running interpreter's environment."""
    script = Path(sys.executable).parent / "moto_server"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "moto.server"]


class MotoServerError(RuntimeError):
    """moto_server failed to start or rejected a control request."""


class MotoServer:
    """A moto_server child process on 127.0.0.1."""

    def __init__(
        self,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.host = HOST
        self.port = port
        self.start_timeout = start_timeout
        self._log_path = Path(log_path) if log_path else None
        self._log_file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise MotoServerError("moto_server is not started: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> "MotoServer":
        """Start moto_server and wait until GET /moto-api/ responds."""
        if self._process is not None:
            raise MotoServerError(f"moto_server is already running at {self.url}")

        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="moto_server-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        self._log_file = open(self._log_path, "ab")

        # A port picked by find_free_port can be taken before moto binds it,
        # so a start that fails that way gets a new port and another try.
        fixed_port = self.port is not None
        attempts = 1 if fixed_port else 3
        last_error: Exception | None = None
        for _ in range(attempts):
            if not fixed_port:
                self.port = find_free_port()
            try:
                self._spawn_and_wait()
                return self
            except MotoServerError as error:
                last_error = error
                self._terminate()
        self._close_log()
        raise MotoServerError(f"{last_error} (log: {self._log_path})")

    def _spawn_and_wait(self) -> None:
        env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
        command = moto_server_command() + ["-H", self.host, "-p", str(self.port)]
        log.info("starting moto_server on %s", self.url)
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )

        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise MotoServerError(
                    f"moto_server exited with status {code} before responding on port {self.port}"
                )
            try:
                status, _ = self._request("GET", "/moto-api/", timeout=1.0)
                if status == 200:
                    log.info("moto_server ready on %s (pid %d)", self.url, self._process.pid)
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise MotoServerError(
            f"moto_server did not respond to GET /moto-api/ on port {self.port} "
            f"within {self.start_timeout:.0f} s"
        )

    def _request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 10.0
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "text/plain"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _control(self, path: str, body: bytes) -> None:
        status, payload = self._request("POST", path, body)
        if status != 200:
            raise MotoServerError(
                f"POST {path} on {self.url} failed with HTTP {status}: {payload[:200]!r}"
            )

    def reset(self) -> None:
        """Wipe all moto state. The auth setting stays as it was."""
        self._control("/moto-api/reset", b"")

    def set_auth(self, enabled: bool) -> None:
        """Turn moto's SigV4 and IAM policy checking on or off."""
        self._control("/moto-api/reset-auth", b"0" if enabled else b"inf")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop moto_server (SIGTERM, then SIGKILL after `timeout` seconds)."""
        self._terminate(timeout)
        self._close_log()

    def _terminate(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        log.info("stopping moto_server pid %d", process.pid)
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("moto_server pid %d ignored SIGTERM for %.0f s, killing it", process.pid, timeout)
            process.kill()
            process.wait()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM arrives."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run moto_server on 127.0.0.1, print its URL and wait for SIGINT or SIGTERM."
    )
    parser.add_argument("--port", type=int, help="TCP port to listen on (default: a free port)")
    parser.add_argument(
        "--auth", action="store_true", help="turn on SigV4 and IAM policy checking after start"
    )
    parser.add_argument("--log", help="file for moto_server's output (default: a temporary file)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    server = MotoServer(port=args.port, log_path=args.log)
    try:
        server.start()
    except MotoServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        if args.auth:
            server.set_auth(True)
        print(server.url, flush=True)
        wait_for_signal()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
