"""Fixtures and helpers for end-to-end tests that use the virtual YubiKey under pcscd.

Import the fixtures into a test module (`from card_fixtures import card, card_stack`).
pcscd listens on one fixed socket per machine, so a stack waits for another test run's
pcscd to stop (up to AWSU_TEST_PCSCD_WAIT seconds, default 300) instead of failing.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from harness import pcsc_harness  # noqa: E402
from harness.pcsc_harness import HarnessError, PcscStack  # noqa: E402

from support import ACCOUNT_ID, TOTP_STEP_SECONDS  # noqa: E402

ANOTHER_PCSCD = "another pcscd is running"
PCSCD_RETRY_SECONDS = 5.0

T = TypeVar("T")


def start_stack(stack: PcscStack) -> None:
    """Start pcscd and the card, waiting while another test run's pcscd owns the socket."""
    wait_seconds = float(os.environ.get("AWSU_TEST_PCSCD_WAIT", "300"))
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            stack.start()
            return
        except HarnessError as error:
            if ANOTHER_PCSCD not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(PCSCD_RETRY_SECONDS)


@pytest.fixture(scope="module")
def card_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscStack]:
    """pcscd with the vpcd reader and the virtual card, shared by the tests of one module."""
    reason = pcsc_harness.unavailable_reason()
    if reason:
        pytest.skip(f"pcscd with the vpcd reader cannot run here: {reason}")
    stack = PcscStack(workdir=tmp_path_factory.mktemp("pcsc"))
    start_stack(stack)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def card(card_stack: PcscStack) -> PcscStack:
    """An empty card without a password, freshly inserted, with default touch settings.

    A test may stop the card or the whole stack: this fixture starts them again for the next test.
    """
    if card_stack.pcscd is None or card_stack.pcscd.poll() is not None:
        card_stack.stop()
        start_stack(card_stack)
    card_stack.stop_card()
    card_stack.state_path.unlink(missing_ok=True)
    card_stack.set_control()
    card_stack.start_card()
    return card_stack


def new_seed() -> str:
    """Return a random 160-bit TOTP seed in base32, as ykman accepts it."""
    return base64.b32encode(os.urandom(20)).decode("ascii")


def mfa_serial(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:mfa/{name}"


def credential_name(serial: str) -> str:
    """Return the OATH credential name of an MFA serial in the original awsu's scheme:
    `aws/iam/ACCOUNT:` and everything after `mfa/`, IAM path included."""
    account = serial.split(":")[4]
    return f"aws/iam/{account}:{serial.split(':mfa/', 1)[1]}"


def add_credential(stack: PcscStack, name: str, seed: str, touch: bool = False, password: str | None = None) -> None:
    """Store a TOTP credential on the card with `ykman oath accounts add`."""
    options = ["--oath-type", "TOTP"]
    if touch:
        options.append("--touch")
    if password is not None:
        options += ["--password", password]
    stack.ykman("oath", "accounts", "add", *options, name, seed)


def apdu_count(stack: PcscStack) -> int:
    return len(stack.log_records())


def apdu_names_since(stack: PcscStack, start: int) -> list[str]:
    """Return the instruction names of the APDUs the card received after the first `start`."""
    return [record.get("name") for record in stack.log_records()[start:]]


def time_step(timestamp: float) -> int:
    return int(timestamp // TOTP_STEP_SECONDS)


def in_one_step(produce: Callable[[], T], attempts: int = 3) -> tuple[T, int]:
    """Run produce() until one run starts and ends in the same TOTP time step.

    Return its result and that step, so that a code computed for the step is comparable.
    """
    for _ in range(attempts):
        started = time.time()
        result = produce()
        if time_step(started) == time_step(time.time()):
            return result, time_step(started)
    raise AssertionError(f"{attempts} attempts each crossed a {TOTP_STEP_SECONDS} s step boundary")
