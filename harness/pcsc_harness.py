"""Start pcscd with a vpcd reader in a private network namespace and insert the virtual YubiKey.

Python API (run from the repository root, or with it on sys.path):

    with PcscStack() as stack:          # starts pcscd, then the card
        stack.ykman("oath", "accounts", "list")
        stack.restart_card()            # removal and insertion; credentials persist
        stack.set_control(touch="timeout", touch_timeout=0.5)

Command line:

    python -m harness.pcsc_harness up [--state FILE]     # run until Ctrl-C or SIGTERM
    python -m harness.pcsc_harness exec [--state FILE] -- COMMAND ...

pcscd listens on the fixed socket /run/pcscd/pcscd.comm, so only one stack can run per
machine, and `start` raises HarnessError when another pcscd is running.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from harness.vcard.state import (  # noqa: E402
    ALGORITHM_SHA1,
    ALGORITHM_SHA256,
    ALGORITHM_SHA512,
    TYPE_HOTP,
    TYPE_TOTP,
    CardState,
    Credential,
)

# ykman 5.9.2 treats a PC/SC reader as a USB YubiKey only when its name contains
# "Yubico YubiKey". The interface names in it set the USB interfaces that ykman assumes.
READER_FRIENDLY_NAME = "Yubico YubiKey OTP+FIDO+CCID"
# vpcd makes two slots, "<FRIENDLYNAME> 00 00" (TCP port 35963) and "... 00 01" (35964).
READER_NAME = READER_FRIENDLY_NAME + " 00 00"
YKMAN_READER_FILTER = "CCID 00 00"
VPCD_PORT = 35963
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
REQUIRED_TOOLS = ("pcscd", "unshare", "nsenter", "ip")
POLL_SECONDS = 0.02

ALGORITHMS = {"sha1": ALGORITHM_SHA1, "sha256": ALGORITHM_SHA256, "sha512": ALGORITHM_SHA512}


class HarnessError(RuntimeError):
    """The test stack could not be started or stopped."""


def running_pcscd_pids() -> list[int]:
    """Return the ids of all pcscd processes on this machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "pcscd":
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def unavailable_reason() -> str | None:
    """Return why pcscd and the virtual card cannot run here, or None when they can.

    A pcscd that is already running is not such a reason: `PcscStack.start` reports it.
    """
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}: install pcscd, vsmartcard-vpcd and iproute2"
    if not VPCD_DRIVER.exists():
        return f"vpcd reader driver {VPCD_DRIVER} not found: install vsmartcard-vpcd"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace (`unshare -n` failed: {probe.stderr.strip()}); run as root"
    return None


def _stop_process_group(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def add_credential_to_state(
    state_path: Path,
    name: str,
    secret_base32: str,
    oath_type: str = "totp",
    algorithm: str = "sha1",
    digits: int = 6,
    touch: bool = False,
    counter: int = 0,
) -> None:
    """Write a credential straight into a card state file, as PUT would. Stop the card first."""
    state = CardState.load(Path(state_path))
    secret = base64.b32decode(secret_base32.upper() + "=" * (-len(secret_base32) % 8))
    credential = Credential(
        name=name.encode(),
        oath_type=TYPE_TOTP if oath_type == "totp" else TYPE_HOTP,
        algorithm=ALGORITHMS[algorithm],
        digits=digits,
        secret=secret,
        touch=touch,
        counter=counter,
    )
    existing = state.find(credential.name)
    if existing is not None:
        state.credentials.remove(existing)
    state.credentials.append(credential)
    state.save(Path(state_path))


def set_state_password(state_path: Path, password: str | None) -> None:
    """Set the OATH password in a card state file, or remove it when password is None. Stop the card first."""
    state = CardState.load(Path(state_path))
    if password is None:
        state.access_key = None
    else:
        state.set_password(password)
    state.save(Path(state_path))


class PcscStack:
    """pcscd in its own network namespace with a vpcd reader, and the virtual card in slot 0."""

    def __init__(self, workdir: Path | str | None = None, state_path: Path | str | None = None, python: str = sys.executable):
        self.own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="awsu-pcsc-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_path = Path(state_path) if state_path else self.workdir / "card-state.json"
        self.log_path = self.workdir / "card-apdu.jsonl"
        self.control_path = self.workdir / "card-control"
        self.pcscd_log_path = self.workdir / "pcscd.log"
        self.card_stderr_path = self.workdir / "card-stderr.log"
        self.shim_dir = self.workdir / "bin"
        self.python = python
        self.reader_name = READER_NAME
        self.pcscd: subprocess.Popen | None = None
        self.card: subprocess.Popen | None = None

    # Lifecycle of pcscd.

    def start(self, with_card: bool = True, timeout: float = 10.0) -> PcscStack:
        """Start pcscd, wait for "daemon ready", then insert the card unless with_card is False."""
        try:
            self._check_can_start()
        except HarnessError:
            self.stop()
            raise

        config_dir = self.workdir / "reader.conf.d"
        config_dir.mkdir(exist_ok=True)
        (config_dir / "vpcd").write_text(
            f'FRIENDLYNAME "{READER_FRIENDLY_NAME}"\n'
            "DEVICENAME /dev/null:0x8C7B\n"
            f"LIBPATH {VPCD_DRIVER}\n"
            "CHANNELID 0x8C7B\n"
        )
        self._write_pkill_shim()

        # unshare and sh both exec, so the Popen pid is pcscd's pid and names its namespace.
        script = f"ip link set lo up && exec pcscd --foreground --debug -c {config_dir}"
        with open(self.pcscd_log_path, "wb") as log:
            self.pcscd = subprocess.Popen(
                ["unshare", "-n", "--", "sh", "-c", script],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_for_log(self.pcscd_log_path, "daemon ready", 0, timeout, self.pcscd, "pcscd")
            if with_card:
                self.start_card(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _check_can_start(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise HarnessError(reason)
        others = running_pcscd_pids()
        if others:
            raise HarnessError(
                f"another pcscd is running (pid {', '.join(map(str, others))}); only one can own "
                f"{PCSCD_SOCKET}: stop it first, and do not run card tests in parallel"
            )

    def stop(self) -> None:
        """Stop the card and pcscd, and remove the work directory when this object created it."""
        self.stop_card(wait_for_removal=False)
        if self.pcscd is not None:
            _stop_process_group(self.pcscd, timeout=5.0)
            self.pcscd = None
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PcscStack:
        if self.pcscd is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def pcscd_pid(self) -> int:
        if self.pcscd is None:
            raise HarnessError("pcscd is not running: call start() first")
        return self.pcscd.pid

    # Lifecycle of the card.

    def start_card(self, timeout: float = 10.0, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """Insert the card: start it in pcscd's namespace and wait until pcscd reports it inserted."""
        if self.card is not None and self.card.poll() is None:
            raise HarnessError(f"the card is already running (pid {self.card.pid})")
        offset = self._log_size(self.pcscd_log_path)
        command = [
            "nsenter",
            f"--net=/proc/{self.pcscd_pid}/ns/net",
            "--",
            self.python,
            "-m",
            "harness.vcard",
            "--state",
            str(self.state_path),
            "--log",
            str(self.log_path),
            "--port",
            str(VPCD_PORT),
            "--control",
            str(self.control_path),
            *extra_args,
        ]
        with open(self.card_stderr_path, "ab") as stderr:
            self.card = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self._wait_for_log(self.pcscd_log_path, f"Card inserted into {self.reader_name}", offset, timeout, self.card, "the virtual card")

    def stop_card(self, timeout: float = 5.0, wait_for_removal: bool = True) -> None:
        """Remove the card: kill its process group and wait until pcscd reports the removal."""
        if self.card is None:
            return
        offset = self._log_size(self.pcscd_log_path)
        running = self.card.poll() is None
        _stop_process_group(self.card, timeout)
        self.card = None
        if running and wait_for_removal and self.pcscd is not None:
            self._wait_for_log(self.pcscd_log_path, f"Card Removed From {self.reader_name}", offset, timeout, self.pcscd, "pcscd")

    def restart_card(self, timeout: float = 10.0) -> None:
        """Remove and insert the card again. Its state file keeps the credentials."""
        self.stop_card(timeout)
        self.start_card(timeout)

    # Card switches and logs.

    def set_control(self, **settings: object) -> None:
        """Replace the card's control file, e.g. set_control(touch="timeout", touch_timeout=0.5)."""
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        temporary = self.control_path.with_name(self.control_path.name + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.control_path)

    def log_records(self, event: str | None = "apdu") -> list[dict]:
        """Return the card's log records, only those of one event type unless event is None."""
        if not self.log_path.exists():
            return []
        records = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [record for record in records if event is None or record["event"] == event]

    def card_state(self) -> CardState:
        return CardState.load(self.state_path)

    # Clients.

    def client_env(self) -> dict[str, str]:
        """Return an environment for clients: the pkill shim first on PATH, no metadata probing."""
        return {
            **os.environ,
            "PATH": f"{self.shim_dir}{os.pathsep}{Path(self.python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def ykman(
        self, *args: str, input: str | None = None, timeout: float = 60.0, check: bool = True, select_reader: bool = True
    ) -> subprocess.CompletedProcess:
        """Run `ykman --reader "CCID 00 00" ARGS` against the card and return the completed process.

        With select_reader False the --reader option is left out, as `ykman list` requires.

        Raises HarnessError with ykman's output when check is True and ykman fails.
        """
        ykman = Path(self.python).parent / "ykman"
        executable = str(ykman) if ykman.exists() else shutil.which("ykman")
        if executable is None:
            raise HarnessError("ykman not found: install yubikey-manager (see harness/requirements.txt)")
        result = subprocess.run(
            [executable, *(["--reader", YKMAN_READER_FILTER] if select_reader else []), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.client_env(),
        )
        if check and result.returncode != 0:
            raise HarnessError(
                f"ykman {' '.join(args)} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    # Helpers.

    def _write_pkill_shim(self) -> None:
        # ykman runs `pkill -9 scdaemon` when it cannot connect; the shim keeps it from
        # killing anything on this machine and reports "no process matched".
        self.shim_dir.mkdir(exist_ok=True)
        shim = self.shim_dir / "pkill"
        shim.write_text("#!/bin/sh\nexit 1\n")
        shim.chmod(0o755)

    @staticmethod
    def _log_size(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    def _wait_for_log(self, path: Path, needle: str, offset: int, timeout: float, process: subprocess.Popen, process_name: str) -> None:
        deadline = time.monotonic() + timeout
        encoded = needle.encode()
        while time.monotonic() < deadline:
            with open(path, "rb") as log:
                log.seek(offset)
                if encoded in log.read():
                    return
            if process.poll() is not None:
                raise HarnessError(f"{process_name} exited with code {process.returncode} before {needle!r}; see {path} and {self.card_stderr_path}")
            time.sleep(POLL_SECONDS)
        raise HarnessError(f"timed out after {timeout} s waiting for {needle!r} in {path}")

    def describe(self) -> dict:
        return {
            "reader": self.reader_name,
            "ykman_reader_filter": YKMAN_READER_FILTER,
            "pcscd_pid": self.pcscd.pid if self.pcscd else None,
            "card_pid": self.card.pid if self.card else None,
            "state": str(self.state_path),
            "apdu_log": str(self.log_path),
            "control": str(self.control_path),
            "pcscd_log": str(self.pcscd_log_path),
            "pkill_shim_dir": str(self.shim_dir),
        }


def _command_env(stack: PcscStack) -> dict[str, str]:
    return {
        **stack.client_env(),
        "VCARD_READER": stack.reader_name,
        "VCARD_STATE": str(stack.state_path),
        "VCARD_APDU_LOG": str(stack.log_path),
        "VCARD_CONTROL": str(stack.control_path),
        "VCARD_PCSCD_PID": str(stack.pcscd_pid),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.pcsc_harness", description="Run pcscd with the virtual YubiKey inserted.")
    parser.add_argument("--state", type=Path, help="card state file to use and keep (default: a new empty card in the work directory)")
    parser.add_argument("--workdir", type=Path, help="directory for logs and configuration, kept afterwards (default: a temporary one, removed)")
    subcommands = parser.add_subparsers(dest="action", required=True)
    subcommands.add_parser("up", help="start the stack, print its paths as JSON, run until Ctrl-C or SIGTERM")
    run = subcommands.add_parser("exec", help="start the stack, run COMMAND with VCARD_* variables set, stop, return its exit code")
    run.add_argument("command", nargs=argparse.REMAINDER, help="command to run, after --")
    arguments = parser.parse_args(argv)

    stack = PcscStack(workdir=arguments.workdir, state_path=arguments.state)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.start()
        if arguments.action == "up":
            print(json.dumps(stack.describe(), indent=1), flush=True)
            while True:
                time.sleep(3600)
        command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
        if not command:
            parser.error("exec needs a command after --")
        return subprocess.run(command, env=_command_env(stack)).returncode
    except HarnessError as error:
        print(f"pcsc_harness: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
