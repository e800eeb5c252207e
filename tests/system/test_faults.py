"""awsu under faults: rejected codes and keys, throttling, a skewed clock, a card that is
removed or never responds, and cache files that must not be trusted. Each test checks the
message, the cache directory, and (through the awsu fixture) that no secret reaches stderr."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

import pytest

from fault_fixtures import (
    card,  # noqa: F401  (pytest fixture)
    check_cache_consistent,
    describe,
    entries_of_kind,
    finish,
    kill_session,
    locked_files,
    make_role_account,
    put_on_card,
    spawn,
)
from support import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET_ACCESS_KEY, totp

MANUAL_ROLE = ("-v", "-g", "manual", "-p", "app", "--", "true")
CARD_ROLE = ["-v", "-p", "app", "--", "true"]
# How long a run against a card that never responds may take before the test calls it hung.
CARD_HANG_BOUND = 40.0


def error_lines(stderr: str) -> list[str]:
    """awsu's error lines ("awsu: ..."), without verbose log lines and notices."""
    return [line for line in stderr.splitlines() if line.startswith("awsu: ") and "waiting" not in line]


def wrong_code(seed: str) -> str:
    """A 6-digit code that is valid for none of the steps the proxy accepts now."""
    now = int(time.time() // 30)
    valid = {totp(seed, step) for step in range(now - 2, now + 3)}
    return next(f"{value:06d}" for value in range(123456, 999999) if f"{value:06d}" not in valid)


# ---------------------------------------------------------------- STS faults


def test_invalid_code_rejected(aws, awsu):
    account = make_role_account(aws, awsu)

    result = awsu.run(*MANUAL_ROLE, stdin_text=wrong_code(account.seed) + "\n")

    assert result.returncode == 1, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert f"the one-time password for {account.serial} was rejected by AWS" in errors[0]
    assert aws.actions().get("GetSessionToken") == 1
    assert aws.actions().get("AssumeRole") is None
    assert awsu.cache_entries() == []
    assert locked_files(awsu) == []


@pytest.mark.parametrize(("status", "code"), [(400, "Throttling"), (503, "ServiceUnavailable")])
def test_throttling_retried(aws, awsu, status, code):
    make_role_account(aws, awsu)
    aws.proxy.set_fault("GetSessionToken", count=2, status=status, code=code, message="Rate exceeded")

    result = awsu.run(*MANUAL_ROLE)

    assert result.returncode == 0, describe(result)
    assert len(result.prompts) == 1
    assert aws.actions().get("GetSessionToken") == 3
    assert aws.proxy.stats()["results"].get("fault") == 2
    assert len(entries_of_kind(awsu, "session token")) == 1
    assert len(entries_of_kind(awsu, "role")) == 1
    check_cache_consistent(awsu)


def test_throttling_exhausted(aws, awsu):
    make_role_account(aws, awsu)
    aws.proxy.set_fault("GetSessionToken", count=100, status=400, code="Throttling", message="Rate exceeded")

    result = awsu.run(*MANUAL_ROLE)

    assert result.returncode == 1, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "GetSessionToken failed for profile 'base'" in errors[0]
    assert "Throttling" in errors[0]
    assert len(result.prompts) == 1
    assert aws.actions().get("GetSessionToken") == 3
    assert awsu.cache_entries() == []


def test_unknown_keys_named(aws, awsu):
    account = make_role_account(aws, awsu)
    awsu.credentials_file.write_text(
        f"[base]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
    )
    aws.set_auth(True)

    result = awsu.run(*MANUAL_ROLE)

    assert result.returncode == 1, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "AWS rejected the keys of profile 'base'" in errors[0]
    assert "InvalidClientTokenId" in errors[0]
    assert account.serial in result.prompts
    assert awsu.cache_entries() == []


def test_rejected_keys_fault_named(aws, awsu):
    make_role_account(aws, awsu)
    aws.proxy.set_fault(
        "GetSessionToken", count=1, status=403, code="InvalidClientTokenId",
        message="The security token included in the request is invalid.",
    )

    result = awsu.run(*MANUAL_ROLE)

    assert result.returncode == 1, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "AWS rejected the keys of profile 'base' (InvalidClientTokenId)" in errors[0]
    assert aws.actions().get("GetSessionToken") == 1
    assert awsu.cache_entries() == []


SIGNATURE_EXPIRED = "Signature expired: is now earlier than (now - 5 min.)"


def test_clock_skew_retried(aws, awsu):
    make_role_account(aws, awsu)
    aws.proxy.set_date_skew(2 * 3600)
    aws.proxy.set_fault("GetSessionToken", count=1, status=403, code="SignatureDoesNotMatch",
                        message=SIGNATURE_EXPIRED)

    result = awsu.run(*MANUAL_ROLE)

    # The SDK retries a clock-skew error once it has read the server's Date header.
    assert result.returncode == 0, describe(result)
    assert len(result.prompts) == 1
    assert aws.actions().get("GetSessionToken") == 2
    assert len(check_cache_consistent(awsu)) == 2


def test_clock_offset_named(aws, awsu):
    make_role_account(aws, awsu)
    aws.proxy.set_date_skew(2 * 3600)
    aws.proxy.set_fault("GetSessionToken", count=100, status=403, code="SignatureDoesNotMatch",
                        message=SIGNATURE_EXPIRED)

    result = awsu.run(*MANUAL_ROLE)

    assert result.returncode == 1, describe(result)
    assert awsu.cache_entries() == []
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "GetSessionToken failed because this machine's clock is" in errors[0]
    # The Date header has whole seconds, so the measured offset may be a second short.
    assert re.search(r"clock is (2h|1h59m5[89]s) behind AWS's", errors[0]), errors[0]
    assert aws.actions().get("GetSessionToken") == 3


# ---------------------------------------------------------------- card faults


def wait_for_hang(card, timeout: float = 20.0) -> None:
    """Wait until the card logs that it keeps a command without a response."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if card.log_records("hang"):
            return
        time.sleep(0.05)
    raise AssertionError(f"awsu sent no command to the hanging card within {timeout:.0f} s")


def check_recovers(aws, awsu, card) -> None:
    """A run with a working card succeeds after the fault: no stuck lock, no bad entry."""
    card.set_control(hang=0)
    if card.card is None:
        card.start_card()
    aws.clear_requests()
    result = finish(awsu, spawn(awsu, CARD_ROLE), CARD_ROLE, time.monotonic(), timeout=60)
    assert result.returncode == 0, describe(result)
    assert "waiting for another awsu" not in result.stderr
    assert aws.actions().get("GetSessionToken") == 1
    assert len(check_cache_consistent(awsu)) == 2


def test_card_removed_midway(aws, awsu, card):
    account = make_role_account(aws, awsu)
    put_on_card(card, account.serial, account.seed)
    card.set_control(hang=1)
    started = time.monotonic()
    process = spawn(awsu, CARD_ROLE)
    wait_for_hang(card)

    card.stop_card()
    result = finish(awsu, process, CARD_ROLE, started, timeout=CARD_HANG_BOUND)

    assert result.returncode is not None, f"awsu still ran {CARD_HANG_BOUND:.0f} s after the card was removed"
    assert result.returncode == 1, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert re.search(r"card|YubiKey|reader", errors[0]), errors[0]
    assert aws.actions().get("GetSessionToken") is None
    assert awsu.cache_entries() == []
    assert locked_files(awsu) == []
    check_recovers(aws, awsu, card)


@pytest.mark.parametrize("card_timeout", [None, "5s"], ids=["default", "5s"])
def test_card_never_answers(aws, awsu, card, card_timeout):
    account = make_role_account(aws, awsu)
    put_on_card(card, account.serial, account.seed)
    card.set_control(hang=1)
    env = awsu.env({"AWSU_CARD_TIMEOUT": card_timeout} if card_timeout else None)
    started = time.monotonic()
    process = spawn(awsu, CARD_ROLE, env=env)
    wait_for_hang(card)

    result = finish(awsu, process, CARD_ROLE, started, timeout=CARD_HANG_BOUND)

    # The lock and the cache are checked first: a killed run must leave them clean too.
    assert awsu.cache_entries() == []
    assert locked_files(awsu) == []
    assert aws.actions().get("GetSessionToken") is None
    check_recovers(aws, awsu, card)
    assert result.returncode is not None, f"awsu still waited for the card after {CARD_HANG_BOUND:.0f} s"
    assert result.returncode == 1, describe(result)
    bound = card_timeout or "30s"
    assert result.elapsed < float(bound.rstrip("s")) + 10, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert f"the YubiKey did not respond within {bound}" in errors[0]


# ---------------------------------------------------------------- untrusted cache files


def tamper_group_readable(entry: Path, outside: Path) -> str:
    entry.chmod(0o640)
    return "its mode 640 lets other users read or change it"


def tamper_world_readable(entry: Path, outside: Path) -> str:
    entry.chmod(0o604)
    return "its mode 604 lets other users read or change it"


def tamper_other_owner(entry: Path, outside: Path) -> str:
    nobody = 65534
    os.chown(entry, nobody, nobody)
    return f"it belongs to user id {nobody}, not to you"


def tamper_symlink(entry: Path, outside: Path) -> str:
    shutil.copy2(entry, outside)
    entry.unlink()
    entry.symlink_to(outside)
    return "it is a symbolic link, which is never followed"


@pytest.mark.parametrize(
    "tamper",
    [tamper_group_readable, tamper_world_readable, tamper_other_owner, tamper_symlink],
    ids=["group", "world", "owner", "symlink"],
)
def test_untrusted_entry_replaced(aws, awsu, tmp_path, tamper):
    if tamper is tamper_other_owner and os.geteuid() != 0:
        pytest.skip("changing a file's owner to nobody needs root")
    make_role_account(aws, awsu)
    first = awsu.run(*MANUAL_ROLE)
    assert first.returncode == 0, describe(first)
    [role_entry] = entries_of_kind(awsu, "role")
    outside = tmp_path / "outside.json"
    reason = tamper(role_entry, outside)
    outside_before = (outside.read_bytes(), outside.stat().st_mtime_ns) if outside.exists() else None
    aws.clear_requests()

    second = awsu.run(*MANUAL_ROLE)

    assert second.returncode == 0, describe(second)
    assert f"cache miss: ignoring {role_entry}: {reason}" in second.stderr
    assert second.prompts == []
    actions = aws.actions()
    assert actions.get("AssumeRole") == 1, actions
    assert actions.get("GetSessionToken") is None, actions
    info = role_entry.lstat()
    assert stat.S_ISREG(info.st_mode)
    assert info.st_uid == os.geteuid()
    assert json.loads(role_entry.read_text())["Kind"] == "role"
    check_cache_consistent(awsu)
    if outside_before is not None:
        assert (outside.read_bytes(), outside.stat().st_mtime_ns) == outside_before
