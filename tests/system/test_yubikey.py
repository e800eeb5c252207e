"""One-time passwords from the YubiKey's OATH applet, through real pcscd and the virtual card.

Codes are checked three ways: awsu, Yubico's ykman, and the RFC 6238 computation in
support.totp (standard-library HMAC-SHA1). The card's APDU log shows what awsu sent.
"""

from __future__ import annotations

import sys
import time

import pytest

from card_fixtures import (  # noqa: F401  (card and card_stack are fixtures)
    add_credential,
    apdu_count,
    apdu_names_since,
    card,
    card_stack,
    credential_name,
    in_one_step,
    mfa_serial,
    new_seed,
    time_step,
)
from harness.pcsc_harness import READER_NAME, PcscStack
from support import (
    EXAMPLE_ACCESS_KEY_ID,
    EXAMPLE_SECRET_ACCESS_KEY,
    REGION,
    Aws,
    Awsu,
    Result,
    role_arn,
    totp,
)

TOUCH_NOTICE = "Touch your YubiKey"
PASSWORD = "correct horse battery"
EXAMPLE_KEYS = f"aws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\naws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"

# Run by awsu in exec mode: the first prints the caller's ARN as STS reports it, both print
# the access key id they were given. Neither prints a secret.
PRINT_IDENTITY = [
    sys.executable,
    "-c",
    "import boto3, os; print(boto3.client('sts').get_caller_identity()['Arn']); "
    "print(os.environ['AWS_ACCESS_KEY_ID'])",
]
PRINT_KEY_ID = [sys.executable, "-c", "import os; print(os.environ['AWS_ACCESS_KEY_ID'])"]


def card_token(awsu: Awsu, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run `awsu token ARGS` with stdin closed, so that any prompt meets end of input."""
    return awsu.run("token", *args, answer_prompts=False, env=awsu.env(env))


def with_card_secret(awsu: Awsu, card: PcscStack, serial: str, touch: bool = False) -> str:
    """Store a new secret for `serial` on the card, under the name awsu derives, and return it."""
    seed = new_seed()
    awsu.extra_secrets.add(seed)
    add_credential(card, credential_name(serial), seed, touch=touch)
    return seed


def stdout_code(result: Result) -> str:
    assert result.returncode == 0, result.describe()
    return result.stdout.strip()


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("awsu: ")]


# Credential names and codes.


@pytest.mark.parametrize(
    ("device", "expected_name"),
    [
        ("alice", "aws/iam/123456789012:alice"),
        ("team/alice", "aws/iam/123456789012:team/alice"),
    ],
    ids=["plain", "iam-path"],
)
def test_token_matches_ykman_and_rfc(awsu: Awsu, card: PcscStack, device: str, expected_name: str) -> None:
    serial = mfa_serial(device)
    assert credential_name(serial) == expected_name
    seed = with_card_secret(awsu, card, serial)

    def both_codes() -> tuple[str, str]:
        from_awsu = stdout_code(card_token(awsu, "--mfa", serial))
        from_ykman = card.ykman("oath", "accounts", "code", "--single", expected_name).stdout.strip()
        return from_awsu, from_ykman

    (from_awsu, from_ykman), step = in_one_step(both_codes)

    assert from_awsu == from_ykman
    assert from_awsu == totp(seed, step)


def test_token_uses_profile_serial(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("profile-user")
    seed = with_card_secret(awsu, card, serial)
    awsu.write_files(
        credentials=f"[base]\n{EXAMPLE_KEYS}",
        config=f"[profile card]\nsource_profile = base\nmfa_serial = {serial}\n",
    )

    code, step = in_one_step(lambda: stdout_code(card_token(awsu, "-p", "card")))

    assert code == totp(seed, step)


def test_token_profile_without_serial(awsu: Awsu, card: PcscStack) -> None:
    awsu.write_files(credentials=f"[plain]\n{EXAMPLE_KEYS}")
    before = apdu_count(card)

    result = card_token(awsu, "-p", "plain")

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    assert "profile 'plain' has no mfa_serial" in result.stderr
    assert apdu_count(card) == before, "the card was used although there is no serial"


def test_code_costs_two_apdus(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("counted")
    with_card_secret(awsu, card, serial)
    before = apdu_count(card)

    stdout_code(card_token(awsu, "--mfa", serial))

    names = apdu_names_since(card, before)
    assert names == ["SELECT", "CALCULATE"]
    assert "CALCULATE ALL" not in names
    assert "LIST" not in names


# Errors of the card and of PC/SC.


def test_missing_credential_named(awsu: Awsu, card: PcscStack) -> None:
    with_card_secret(awsu, card, mfa_serial("someone-else"))

    result = card_token(awsu, "--mfa", mfa_serial("absent"))

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    assert error_lines(result) == [
        'awsu: no OATH credential named "aws/iam/123456789012:absent" on the YubiKey; '
        "list the credentials with `ykman oath accounts list` and check the name"
    ]


def test_card_removed_error(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("removed")
    with_card_secret(awsu, card, serial)
    card.stop_card()

    result = card_token(awsu, "--mfa", serial)

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    [line] = error_lines(result)
    assert "no YubiKey with the OATH applet found" in line
    assert f'"{READER_NAME}" (no card)' in line


def test_pcscd_stopped_error(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("no-daemon")
    with_card_secret(awsu, card, serial)
    card.stop()

    result = card_token(awsu, "--mfa", serial)

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    [line] = error_lines(result)
    assert "the PC/SC service (pcscd) is not running" in line


# Touch.


def test_touch_notice_on_stderr(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("touchy")
    seed = with_card_secret(awsu, card, serial, touch=True)
    # awsu shows the notice when the card has not responded after 0.5 s.
    card.set_control(touch="auto", touch_delay=1.5)

    result, step = in_one_step(lambda: card_token(awsu, "--mfa", serial))

    assert result.returncode == 0, result.describe()
    assert TOUCH_NOTICE in result.stderr
    assert TOUCH_NOTICE not in result.stdout
    assert result.stdout.strip() == totp(seed, step)


def test_touch_timeout_error(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("untouched")
    with_card_secret(awsu, card, serial, touch=True)
    card.set_control(touch="timeout", touch_timeout=1)

    result = card_token(awsu, "--mfa", serial)

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    assert TOUCH_NOTICE in result.stderr
    [line] = error_lines(result)
    assert "not touched in time" in line


# Password-protected applet.


@pytest.fixture
def locked_card(awsu: Awsu, card: PcscStack) -> tuple[str, str]:
    """A card whose applet has PASSWORD and a credential for a serial; return serial and seed."""
    serial = mfa_serial("locked")
    seed = with_card_secret(awsu, card, serial)
    card.ykman("oath", "access", "change", "--new-password", PASSWORD)
    awsu.extra_secrets.add(PASSWORD)
    return serial, seed


def test_password_from_environment(awsu: Awsu, locked_card: tuple[str, str]) -> None:
    serial, seed = locked_card

    result, step = in_one_step(lambda: card_token(awsu, "--mfa", serial, env={"AWSU_OATH_PASSWORD": PASSWORD}))

    assert stdout_code(result) == totp(seed, step)
    assert "password" not in result.stderr.lower()


def test_wrong_password_one_error(awsu: Awsu, locked_card: tuple[str, str]) -> None:
    serial, _ = locked_card

    result = card_token(awsu, "--mfa", serial, env={"AWSU_OATH_PASSWORD": "not the password"})

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("awsu: wrong OATH password for the YubiKey in "), result.describe()
    assert "AWSU_OATH_PASSWORD" in lines[0], result.describe()


def test_missing_password_names_variable(awsu: Awsu, locked_card: tuple[str, str]) -> None:
    serial, _ = locked_card

    result = card_token(awsu, "--mfa", serial)

    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    assert "needs its OATH password" in result.stderr, result.describe()
    assert "AWSU_OATH_PASSWORD" in result.stderr, result.describe()


# Reader selection.


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_reader_filter_selects(awsu: Awsu, card: PcscStack, how: str) -> None:
    serial = mfa_serial("reader")
    seed = with_card_secret(awsu, card, serial)
    if how == "flag":
        run = lambda: card_token(awsu, "--reader", "CCID 00 00", "--mfa", serial)  # noqa: E731
    else:
        run = lambda: card_token(awsu, "--mfa", serial, env={"AWSU_READER": "CCID 00 00"})  # noqa: E731

    result, step = in_one_step(run)

    assert stdout_code(result) == totp(seed, step)


def test_reader_filter_empty_slot(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("other-slot")
    with_card_secret(awsu, card, serial)

    result = card_token(awsu, "--reader", "CCID 00 01", "--mfa", serial)

    assert result.returncode == 1, result.describe()
    [line] = error_lines(result)
    assert f'no card in reader "{READER_NAME[:-6]} 00 01"' in line


def test_reader_filter_no_match(awsu: Awsu, card: PcscStack) -> None:
    serial = mfa_serial("nowhere")
    with_card_secret(awsu, card, serial)
    before = apdu_count(card)

    result = card_token(awsu, "--reader", "Nitrokey", "--mfa", serial)

    assert result.returncode == 1, result.describe()
    [line] = error_lines(result)
    assert 'no reader name contains "Nitrokey"' in line
    assert f'"{READER_NAME}" (not searched)' in line
    assert f'"{READER_NAME[:-6]} 00 01" (not searched)' in line
    assert apdu_count(card) == before


# End to end: a role profile whose MFA secret is on the card.


@pytest.fixture
def role_on_card(aws: Aws, awsu: Awsu, card: PcscStack) -> tuple[str, str]:
    """Create an IAM user with keys, an MFA device whose secret is on the card, and a role.

    The profile `card-role` assumes the role with that device. Return the serial and seed.
    """
    user = aws.create_user("card-user", mfa_name="card-user")
    assert user.serial is not None and user.seed is not None
    add_credential(card, credential_name(user.serial), user.seed)
    aws.create_role("card-role")
    awsu.write_files(
        credentials=(
            f"[card-user]\naws_access_key_id = {user.access_key_id}\n"
            f"aws_secret_access_key = {user.secret_access_key}\n"
        ),
        config=(
            f"[profile card-role]\nrole_arn = {role_arn('card-role')}\nsource_profile = card-user\n"
            f"mfa_serial = {user.serial}\nregion = {REGION}\n"
        ),
    )
    aws.clear_requests()
    return user.serial, user.seed


def run_role(awsu: Awsu, program: list[str]) -> Result:
    return awsu.run("-p", "card-role", "--", *program, answer_prompts=False)


def proxy_total(aws: Aws) -> int:
    return aws.proxy.stats()["total"]


def test_role_with_card_no_typing(aws: Aws, awsu: Awsu, card: PcscStack, role_on_card: tuple[str, str]) -> None:
    serial, seed = role_on_card
    apdus_before = apdu_count(card)
    started = time_step(time.time())

    result = run_role(awsu, PRINT_IDENTITY)

    assert result.returncode == 0, result.describe()
    assert result.prompts == []
    assert "Enter" not in result.stderr
    printed = result.stdout.split()
    assert len(printed) == 2, result.describe()
    arn = printed[0]
    assert arn == "arn:aws:sts::123456789012:assumed-role/card-role/awsu-tester"
    assert apdu_names_since(card, apdus_before) == ["SELECT", "CALCULATE"]

    [session_call] = aws.requests("GetSessionToken")
    assert session_call.params.get("SerialNumber") == serial
    valid_codes = {totp(seed, step) for step in range(started - 1, started + 3)}
    assert session_call.params.get("TokenCode") in valid_codes
    outcomes = [(entry["action"], entry["status"]) for entry in aws.proxy.stats()["requests"]]
    assert ("GetSessionToken", 200) in outcomes, outcomes
    assert ("AssumeRole", 200) in outcomes, outcomes


def test_cached_run_skips_card_and_aws(aws: Aws, awsu: Awsu, card: PcscStack, role_on_card: tuple[str, str]) -> None:
    first = run_role(awsu, PRINT_IDENTITY)
    assert first.returncode == 0, first.describe()
    printed = first.stdout.split()
    assert len(printed) == 2, first.describe()
    first_key_id = printed[1]
    calls_before = proxy_total(aws)
    apdus_before = apdu_count(card)

    second = run_role(awsu, PRINT_KEY_ID)

    assert second.returncode == 0, second.describe()
    assert second.stdout.strip() == first_key_id
    assert proxy_total(aws) - calls_before == 0
    assert apdu_count(card) - apdus_before == 0


def test_card_removed_cold_cache(aws: Aws, awsu: Awsu, card: PcscStack, role_on_card: tuple[str, str]) -> None:
    card.stop_card()

    result = run_role(awsu, PRINT_KEY_ID)

    assert result.returncode == 1, result.describe()
    assert result.stdout == "", "the program ran without credentials"
    [line] = error_lines(result)
    assert "no YubiKey with the OATH applet found" in line
    assert f'"{READER_NAME}" (no card)' in line
    assert "hint: to type the one-time password instead, add -g manual" in result.stderr
    assert awsu.cache_entries() == []
    used_steps = list(awsu.cache_dir.glob("*.step")) if awsu.cache_dir.is_dir() else []
    assert used_steps == [], "a time step was recorded as used without a code"
    assert aws.requests("GetSessionToken") == []
