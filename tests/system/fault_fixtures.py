"""Fixtures and helpers of the concurrency and fault tests: the virtual YubiKey, a role
account behind one MFA device, concurrent awsu processes and checks of the cache directory.

The card fixture starts its own pcscd for each test. Only one pcscd can run per machine,
so it waits (PCSC_WAIT_SECONDS, default 180) for another one to go away before failing.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from harness.pcsc_harness import (  # noqa: E402
    HarnessError,
    PcscStack,
    add_credential_to_state,
    running_pcscd_pids,
    unavailable_reason,
)

from support import Aws, Awsu, Result, User, parse_exports  # noqa: E402

PROMPT_LINE = "Enter the one-time password"
WAITING_NOTICE = "waiting for another awsu"
PCSC_WAIT_SECONDS = float(os.environ.get("PCSC_WAIT_SECONDS", "180"))


def start_card_stack(workdir: Path) -> PcscStack:
    """Start pcscd and the virtual card, waiting while another test run owns pcscd."""
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"the virtual YubiKey cannot run here: {reason}")
    deadline = time.monotonic() + PCSC_WAIT_SECONDS
    while True:
        stack = PcscStack(workdir=workdir)
        try:
            return stack.start()
        except HarnessError as error:
            if not running_pcscd_pids() or time.monotonic() > deadline:
                pytest.fail(f"could not start pcscd and the virtual card: {error}")
        time.sleep(5)


@pytest.fixture
def card(tmp_path: Path) -> Iterator[PcscStack]:
    """pcscd in a private network namespace with the virtual YubiKey inserted, for one test."""
    stack = start_card_stack(tmp_path / "pcsc")
    try:
        yield stack
    finally:
        stack.stop()


def put_on_card(card: PcscStack, serial: str, seed: str) -> str:
    """Store the TOTP seed of `serial` on the card under awsu's credential name; return it."""
    account, name = serial.split(":")[4], serial.split(":mfa/", 1)[1]
    credential = f"aws/iam/{account}:{name}"
    card.stop_card()
    add_credential_to_state(card.state_path, credential, seed)
    card.start_card()
    return credential


def card_commands(card: PcscStack, instruction: str) -> list[dict]:
    """Return the card's APDU log records of one instruction byte (hex, e.g. "A2" for CALCULATE)."""
    return [record for record in card.log_records() if record.get("ins") == instruction]


@dataclass
class RoleAccount:
    """An IAM user with an MFA device and roles, written as profiles `ROLE` with source `base`."""

    user: User
    serial: str
    seed: str
    roles: dict[str, str]


def make_role_account(aws: Aws, awsu: Awsu, roles: tuple[str, ...] = ("app",)) -> RoleAccount:
    """Create the user, its MFA device and the roles; write the credentials and config files."""
    user = aws.create_user("worker", mfa_name="worker")
    role_arns = {name: aws.create_role(f"{name}-role") for name in roles}
    credentials = (
        f"[base]\naws_access_key_id = {user.access_key_id}\n"
        f"aws_secret_access_key = {user.secret_access_key}\n"
    )
    config = "".join(
        f"[profile {name}]\nrole_arn = {arn}\nsource_profile = base\nmfa_serial = {user.serial}\n\n"
        for name, arn in role_arns.items()
    )
    awsu.write_files(credentials=credentials, config=config)
    aws.clear_requests()
    assert user.serial is not None and user.seed is not None
    return RoleAccount(user, user.serial, user.seed, role_arns)


def spawn(awsu: Awsu, args: list[str], env: dict[str, str] | None = None,
          stdin: int | None = subprocess.PIPE) -> subprocess.Popen:
    """Start awsu without waiting, in a new session so that it has no terminal."""
    return subprocess.Popen(
        [str(awsu.binary), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else awsu.env(),
        cwd=awsu.home,
        start_new_session=True,
    )


def finish(awsu: Awsu, process: subprocess.Popen, args: list[str], started: float,
           timeout: float = 60.0, stdin_text: str | None = None) -> Result:
    """Wait for a spawned awsu (killing it after `timeout` seconds) and record its result, so
    that the runner's secret scan covers its stderr. A killed run has returncode None."""
    try:
        stdout, stderr = process.communicate(
            input=stdin_text.encode() if stdin_text is not None else None, timeout=timeout
        )
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        kill_session(process)
        stdout, stderr = process.communicate()
        returncode = None
    result = Result(
        list(args), returncode, (stdout or b"").decode("utf-8", "replace"), (stderr or b"").decode("utf-8", "replace"),
        [], time.monotonic() - started,
    )
    result.exports = parse_exports(result.stdout)
    awsu.results.append(result)
    return result


def kill_session(process: subprocess.Popen) -> None:
    """Kill a spawned awsu and whatever it started (it leads its own session)."""
    try:
        os.killpg(process.pid, 9)
    except ProcessLookupError:
        pass
    process.wait()


def run_concurrently(awsu: Awsu, count: int, args: list[str], stdin_text: str | None = None,
                     env: dict[str, str] | None = None, timeout: float = 120.0) -> list[Result]:
    """Start `count` awsu processes at once, each with `stdin_text` piped in, and wait for all."""
    started = time.monotonic()
    processes = [spawn(awsu, args, env=env) for _ in range(count)]
    results: list[Result | None] = [None] * count

    def wait(index: int) -> None:
        results[index] = finish(awsu, processes[index], args, started, timeout, stdin_text or "")

    threads = [threading.Thread(target=wait, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]


def describe(result: Result) -> str:
    return f"awsu {shlex.join(result.args)} exited {result.returncode}\n--- stderr ---\n{result.stderr}"


def cache_files(awsu: Awsu) -> list[Path]:
    """Every file in the cache directory, hidden temporary files included."""
    if not awsu.cache_dir.is_dir():
        return []
    return sorted(awsu.cache_dir.iterdir())


def entries_of_kind(awsu: Awsu, kind: str) -> list[Path]:
    """Cache entries (*.json) whose Kind field is `kind` ("session token" or "role")."""
    found = []
    for path in awsu.cache_entries():
        if path.is_symlink():
            continue
        if json.loads(path.read_text()).get("Kind") == kind:
            found.append(path)
    return found


def check_cache_consistent(awsu: Awsu) -> list[Path]:
    """Assert that every *.json entry is a private, valid entry and that no *.tmp is left;
    return the entries."""
    leftovers = [path.name for path in cache_files(awsu) if path.name.endswith(".tmp")]
    assert leftovers == [], f"temporary files left in {awsu.cache_dir}: {leftovers}"
    entries = awsu.cache_entries()
    for path in entries:
        info = path.lstat()
        assert stat.S_ISREG(info.st_mode), f"{path.name} is not a regular file"
        assert info.st_mode & 0o077 == 0, f"{path.name} has mode {info.st_mode & 0o777:o}"
        try:
            entry = json.loads(path.read_text())
        except ValueError as error:
            raise AssertionError(f"{path.name} is not valid JSON: {error}") from None
        for field in ("AccessKeyID", "SecretAccessKey", "SessionToken", "Expires", "Kind"):
            assert entry.get(field), f"{path.name} has no {field}"
    return entries


def locked_files(awsu: Awsu) -> list[str]:
    """Names of the cache directory's lock files that some process holds right now."""
    locked = []
    for path in cache_files(awsu):
        if not path.name.endswith(".lock"):
            continue
        probe = subprocess.run(["flock", "-n", str(path), "true"], capture_output=True)
        if probe.returncode != 0:
            locked.append(path.name)
    return locked
