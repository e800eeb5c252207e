"""The virtual YubiKey OATH card, checked with Yubico's ykman and with raw APDUs over PC/SC.

Codes are checked against an RFC 4226 / RFC 6238 computation written here with the
standard library, so the card, ykman and this file must agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import subprocess
import time

import pytest

from harness import pcsc_harness
from harness.pcsc_harness import READER_NAME, PcscStack
from harness.vcard.apdu import ApduError, parse_command

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse"
OATH_SELECT = bytes.fromhex("00a4040007a0000005272101")


def hotp(secret_base32: str, counter: int, digits: int = 6, algorithm: str = "sha1") -> str:
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), algorithm).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret_base32: str, timestamp: float, digits: int = 6, algorithm: str = "sha1", period: int = 30) -> str:
    return hotp(secret_base32, int(timestamp) // period, digits, algorithm)


def code_in_one_step(produce, expected, period: int = 30, attempts: int = 3) -> tuple[str, str]:
    """Run produce() and expected(timestamp) in the same time step, retrying across a step boundary."""
    for _ in range(attempts):
        before = time.time()
        actual = produce()
        after = time.time()
        if int(before) // period == int(after) // period:
            return actual, expected(before)
    raise AssertionError(f"{attempts} attempts each crossed a {period} s step boundary")


@pytest.fixture(scope="module")
def stack():
    reason = pcsc_harness.unavailable_reason()
    if reason:
        pytest.skip(f"pcscd with the vpcd reader cannot run here: {reason}")
    with PcscStack() as running:
        yield running


@pytest.fixture
def card(stack):
    """An empty card, freshly inserted, with default touch settings and an empty log."""
    stack.stop_card()
    stack.state_path.unlink(missing_ok=True)
    stack.log_path.unlink(missing_ok=True)
    stack.set_control(touch="auto", touch_delay=0.2)
    stack.start_card()
    return stack


def ykman_account_names(stack: PcscStack, *extra: str) -> list[str]:
    return stack.ykman("oath", "accounts", "list", *extra).stdout.split()


def transmit(connection, apdu: bytes) -> tuple[bytes, int]:
    data, sw1, sw2 = connection.transmit(list(apdu))
    return bytes(data), sw1 << 8 | sw2


@pytest.fixture
def pcsc_connection(card):
    from smartcard.System import readers

    reader = next(item for item in readers() if str(item) == READER_NAME)
    connection = reader.createConnection()
    connection.connect()
    yield connection
    connection.disconnect()
    # Release the PC/SC context now, while pcscd still runs, not in a later garbage collection.
    connection.release()


def test_rfc6238_reference_vectors():
    # RFC 6238 appendix B, seeds "1234567890" repeated to 20, 32 and 64 bytes.
    seed = b"1234567890"
    sha1 = base64.b32encode(seed * 2).decode()
    sha256 = base64.b32encode((seed * 4)[:32]).decode()
    sha512 = base64.b32encode((seed * 7)[:64]).decode()
    assert totp(sha1, 59, 8, "sha1") == "94287082"
    assert totp(sha256, 59, 8, "sha256") == "46119246"
    assert totp(sha512, 59, 8, "sha512") == "90693936"
    assert totp(sha1, 1111111109, 8, "sha1") == "07081804"


def test_parse_short_and_extended_apdus():
    assert parse_command(bytes.fromhex("00a1000000")).le == 256
    extended = parse_command(bytes.fromhex("00a4000100000a740800000000000000010000"))
    assert extended.extended
    assert extended.data == bytes.fromhex("74080000000000000001")
    assert extended.le == 65536
    with pytest.raises(ApduError) as error:
        parse_command(bytes.fromhex("0001000005aabb"))
    assert error.value.sw == 0x6700


def test_reader_name_and_version(card):
    readers = card.ykman("list", "--readers", select_reader=False).stdout.splitlines()
    assert READER_NAME in readers
    info = card.ykman("oath", "info").stdout
    assert "OATH version:        5.4.3" in info
    assert "Password protection: disabled" in info


@pytest.mark.parametrize(
    ("algorithm", "digits", "period"),
    [("sha1", 6, 30), ("sha256", 8, 30), ("sha512", 6, 30), ("sha512", 8, 30), ("sha1", 6, 60)],
)
def test_totp_code_matches_rfc6238(card, algorithm, digits, period):
    name = f"Example:{algorithm}-{digits}-{period}"
    card.ykman("oath", "accounts", "add", "-f", "-a", algorithm, "-d", str(digits), "-P", str(period), name, SECRET)

    actual, expected = code_in_one_step(
        lambda: card.ykman("oath", "accounts", "code", "-s", name).stdout.strip(),
        lambda timestamp: totp(SECRET, timestamp, digits, algorithm, period),
        period,
    )
    assert actual == expected

    stored = card.card_state().credentials[0]
    assert stored.digits == digits


def test_code_all_lists_every_totp(card):
    card.ykman("oath", "accounts", "add", "-f", "Example:alice", SECRET)
    card.ykman("oath", "accounts", "add", "-f", "-a", "sha256", "Example:bob", SECRET)

    output, expected = code_in_one_step(
        lambda: card.ykman("oath", "accounts", "code").stdout,
        lambda timestamp: {
            "Example:alice": totp(SECRET, timestamp),
            "Example:bob": totp(SECRET, timestamp, algorithm="sha256"),
        },
    )
    codes = dict(line.split() for line in output.splitlines())
    assert codes == expected
    calculate_all = [record for record in card.log_records() if record["name"] == "CALCULATE ALL"]
    assert [record["status"] for record in calculate_all] == ["9000"]


def test_hotp_counter_and_imf(card):
    card.ykman("oath", "accounts", "add", "-f", "-o", "hotp", "Example:hotp", SECRET)
    card.ykman("oath", "accounts", "add", "-f", "-o", "hotp", "-c", "5", "Example:imf", SECRET)

    first = card.ykman("oath", "accounts", "code", "-s", "Example:hotp").stdout.strip()
    second = card.ykman("oath", "accounts", "code", "-s", "Example:hotp").stdout.strip()
    from_imf = card.ykman("oath", "accounts", "code", "-s", "Example:imf").stdout.strip()

    assert first == hotp(SECRET, 0)
    assert second == hotp(SECRET, 1)
    assert from_imf == hotp(SECRET, 5)
    listing = card.ykman("oath", "accounts", "code").stdout
    assert "[HOTP Account]" in listing
    counters = {credential.name: credential.counter for credential in card.card_state().credentials}
    assert counters == {b"Example:hotp": 2, b"Example:imf": 6}


def test_list_and_delete(card):
    card.ykman("oath", "accounts", "add", "-f", "Example:alice", SECRET)
    card.ykman("oath", "accounts", "add", "-f", "Example:bob", SECRET)
    assert ykman_account_names(card) == ["Example:alice", "Example:bob"]

    card.ykman("oath", "accounts", "delete", "-f", "Example:alice")

    assert ykman_account_names(card) == ["Example:bob"]
    deletes = [record for record in card.log_records() if record["name"] == "DELETE"]
    assert [(record["credential"], record["status"]) for record in deletes] == [("Example:alice", "9000")]


def test_password_set_use_and_clear(card):
    card.ykman("oath", "accounts", "add", "-f", "Example:alice", SECRET)
    card.ykman("oath", "access", "change", "-n", PASSWORD)

    assert "Password protection: enabled" in card.ykman("oath", "info").stdout
    assert ykman_account_names(card, "-p", PASSWORD) == ["Example:alice"]
    # A new ykman run selects the applet again, which must drop the authentication.
    locked = card.ykman("oath", "accounts", "list", input="", check=False)
    assert locked.returncode != 0
    wrong = card.ykman("oath", "accounts", "list", "-p", "wrong password", check=False)
    assert wrong.returncode != 0
    assert "Wrong password" in wrong.stderr

    validates = [record["status"] for record in card.log_records() if record["name"] == "VALIDATE"]
    assert validates == ["9000", "6A80"]

    card.ykman("oath", "access", "change", "-p", PASSWORD, "-c")
    assert ykman_account_names(card) == ["Example:alice"]
    assert card.card_state().access_key is None


def test_reset_clears_credentials_password_and_salt(card):
    card.ykman("oath", "accounts", "add", "-f", "Example:alice", SECRET)
    card.ykman("oath", "access", "change", "-n", PASSWORD)
    salt_before = card.card_state().salt

    card.ykman("oath", "reset", "-f")

    assert ykman_account_names(card) == []
    state = card.card_state()
    assert state.access_key is None
    assert state.salt != salt_before


def test_many_credentials_chain_responses(card):
    card.stop_card()
    names = [f"Issuer{index:02d}:user{index:02d}@example.com" for index in range(44)]
    for name in names:
        pcsc_harness.add_credential_to_state(card.state_path, name, SECRET)
    card.start_card()
    card.ykman("oath", "accounts", "add", "-f", "Issuer44:user44@example.com", SECRET)
    names.append("Issuer44:user44@example.com")

    assert ykman_account_names(card) == sorted(names)
    output, expected = code_in_one_step(
        lambda: card.ykman("oath", "accounts", "code").stdout,
        lambda timestamp: totp(SECRET, timestamp),
    )
    codes = dict(line.split() for line in output.splitlines())
    assert sorted(codes) == sorted(names)
    assert set(codes.values()) == {expected}

    records = card.log_records()
    first_list = next(record for record in records if record["name"] == "LIST")
    first_calculate_all = next(record for record in records if record["name"] == "CALCULATE ALL")
    assert first_list["status"].startswith("61")
    assert first_calculate_all["status"].startswith("61")
    assert first_calculate_all["response_length"] == 256
    assert sum(record["name"] == "SEND REMAINING" for record in records) >= 8


def test_touch_auto_waits_then_answers(card):
    card.ykman("oath", "accounts", "add", "-f", "-t", "Example:touch", SECRET)
    # With a single account ykman calculates it directly, so a second one is needed for the listing.
    card.ykman("oath", "accounts", "add", "-f", "Example:plain", SECRET)
    card.set_control(touch="auto", touch_delay=0.5)

    listing = card.ykman("oath", "accounts", "code").stdout
    assert "[Requires Touch]" in listing
    started = time.monotonic()
    actual, expected = code_in_one_step(
        lambda: card.ykman("oath", "accounts", "code", "-s", "Example:touch").stdout.strip(),
        lambda timestamp: totp(SECRET, timestamp),
    )
    assert actual == expected
    assert time.monotonic() - started >= 0.5
    calculates = [record for record in card.log_records() if record["name"] == "CALCULATE"]
    assert calculates[-1]["touch"] == "auto"
    assert calculates[-1]["status"] == "9000"


def test_touch_timeout_status_words(card):
    card.ykman("oath", "accounts", "add", "-f", "-t", "Example:touch", SECRET)

    card.set_control(touch="timeout", touch_timeout=0.3)
    timed_out = card.ykman("oath", "accounts", "code", "-s", "Example:touch", check=False)
    assert timed_out.returncode != 0
    assert card.log_records()[-1]["status"] == "6985"

    # ykman 5.9.2 prints its touch message only for 6982.
    card.set_control(touch="timeout", touch_timeout=0.3, touch_timeout_sw="6982")
    timed_out = card.ykman("oath", "accounts", "code", "-s", "Example:touch", check=False)
    assert timed_out.returncode != 0
    assert "Touch account timed out!" in timed_out.stderr
    assert card.log_records()[-1]["status"] == "6982"


def test_hang_blocks_until_released(card):
    card.set_control(hang=1)
    client = subprocess.Popen(
        ["ykman", "--reader", "CCID 00 00", "oath", "info"],
        env=card.client_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        assert client.poll() is None
        assert any(record["event"] == "hang" for record in card.log_records(None))
    finally:
        card.set_control(hang=0)
    stdout, stderr = client.communicate(timeout=30)
    assert client.returncode == 0, stderr
    assert "OATH version" in stdout


def test_state_persists_across_card_restart(card):
    card.ykman("oath", "accounts", "add", "-f", "Example:alice", SECRET)
    card.ykman("oath", "accounts", "add", "-f", "-o", "hotp", "Example:hotp", SECRET)
    card.ykman("oath", "accounts", "code", "-s", "Example:hotp")
    card.ykman("oath", "access", "change", "-n", PASSWORD)

    card.restart_card()

    assert ykman_account_names(card, "-p", PASSWORD) == ["Example:alice", "Example:hotp"]
    after_restart = card.ykman("oath", "accounts", "code", "-p", PASSWORD, "-s", "Example:hotp").stdout.strip()
    assert after_restart == hotp(SECRET, 1)
    events = [record["event"] for record in card.log_records(None)]
    assert events.count("start") == 2


def test_raw_apdu_status_words(card, pcsc_connection):
    connection = pcsc_connection

    assert transmit(connection, bytes.fromhex("00a1000000"))[1] == 0x6D00
    response, sw = transmit(connection, OATH_SELECT)
    assert sw == 0x9000
    assert response[:5] == bytes.fromhex("7903050403")

    assert transmit(connection, bytes.fromhex("00ee000000"))[1] == 0x6D00
    missing = bytes.fromhex("00a20001") + bytes([9]) + bytes.fromhex("7105") + b"nope!" + bytes.fromhex("7400")
    assert transmit(connection, missing)[1] == 0x6984
    bad_put = bytes.fromhex("0001000004") + bytes.fromhex("7302ff06")
    assert transmit(connection, bad_put)[1] == 0x6A80
    assert transmit(connection, bytes.fromhex("0004000000"))[1] == 0x6A86


def test_raw_calculate_full_and_truncated(card, pcsc_connection):
    connection = pcsc_connection
    key = base64.b32decode(SECRET)
    name = b"Example:raw"
    put = bytes([0x71, len(name)]) + name + bytes([0x73, 2 + len(key), 0x21, 6]) + key
    transmit(connection, OATH_SELECT)
    assert transmit(connection, bytes([0, 0x01, 0, 0, len(put)]) + put)[1] == 0x9000

    challenge = struct.pack(">Q", 123456)
    body = bytes([0x71, len(name)]) + name + bytes([0x74, 8]) + challenge
    full, sw = transmit(connection, bytes([0, 0xA2, 0, 0, len(body)]) + body)
    assert sw == 0x9000
    assert full == bytes([0x75, 21, 6]) + hmac.new(key, challenge, "sha1").digest()

    truncated, sw = transmit(connection, bytes([0, 0xA2, 0, 1, len(body)]) + body)
    assert sw == 0x9000
    assert truncated[:3] == bytes([0x76, 5, 6])
    value = struct.unpack(">I", truncated[3:])[0] & 0x7FFFFFFF
    assert str(value % 10**6).zfill(6) == hotp(SECRET, 123456)


def test_raw_authentication_resets_on_reselect(card, pcsc_connection):
    connection = pcsc_connection
    transmit(connection, OATH_SELECT)
    key = hashlib.pbkdf2_hmac("sha1", PASSWORD.encode(), card.card_state().salt, 1000, 16)
    challenge = bytes(8)
    set_code = bytes([0x73, 17, 0x21]) + key + bytes([0x74, 8]) + challenge
    set_code += bytes([0x75, 20]) + hmac.new(key, challenge, "sha1").digest()
    assert transmit(connection, bytes([0, 0x03, 0, 0, len(set_code)]) + set_code)[1] == 0x9000

    response, sw = transmit(connection, OATH_SELECT)
    assert sw == 0x9000
    fields = response[15:]
    assert fields[:2] == bytes([0x74, 8])
    assert fields[10:13] == bytes([0x7B, 1, 1])
    assert transmit(connection, bytes.fromhex("00a1000000"))[1] == 0x6982

    card_challenge = fields[2:10]
    client_challenge = b"\x01" * 8
    validate = bytes([0x75, 20]) + hmac.new(key, card_challenge, "sha1").digest()
    validate += bytes([0x74, 8]) + client_challenge
    answer, sw = transmit(connection, bytes([0, 0xA3, 0, 0, len(validate)]) + validate)
    assert sw == 0x9000
    assert answer == bytes([0x75, 20]) + hmac.new(key, client_challenge, "sha1").digest()
    assert transmit(connection, bytes.fromhex("00a1000000"))[1] == 0x9000

    transmit(connection, OATH_SELECT)
    assert transmit(connection, bytes.fromhex("00a1000000"))[1] == 0x6982
