"""The MFA device lifecycle and console sign-in: `awsu register`, `awsu unregister` and
`awsu console`, against moto behind the validating proxy and the virtual YubiKey under pcscd.

The proxy checks the two codes of EnableMFADevice against the seed it saw in the
CreateVirtualMFADevice response, and each code's single use, so a passing registration
proves that the card stores the device's secret. Console tests run a local federation
endpoint in a thread.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import zxingcpp

from card_fixtures import (  # noqa: F401  (card and card_stack are fixtures)
    card,
    card_stack,
    credential_name,
    in_one_step,
    time_step,
)
from harness.pcsc_harness import PcscStack
from support import ACCOUNT_ID, Aws, Awsu, Result, User, mfa_arn, role_arn, totp

ADMIN = "admin"
USER = "alice"
SERIAL = mfa_arn(USER)
ANSI_SEQUENCE = re.compile(r"\x1b\[([0-9;]*)m")
UPPER_HALF_BLOCK = "▀"


# Helpers.


def admin_profile(awsu: Awsu, aws: Aws, extra_config: str = "") -> User:
    """Create an admin IAM user whose keys are the default profile, and the user to register."""
    admin = aws.create_user(ADMIN)
    aws.create_user(USER)
    awsu.write_files(
        credentials=f"[default]\naws_access_key_id = {admin.access_key_id}\n"
        f"aws_secret_access_key = {admin.secret_access_key}\n",
        config=extra_config,
    )
    return admin


def iam_devices(aws: Aws, user: str = USER) -> tuple[list[str], list[str]]:
    """Return the serials of the user's MFA devices and of all virtual MFA devices in moto."""
    iam = aws.client("iam")
    assigned = [device["SerialNumber"] for device in iam.list_mfa_devices(UserName=user)["MFADevices"]]
    virtual = [device["SerialNumber"] for device in iam.list_virtual_mfa_devices()["VirtualMFADevices"]]
    return assigned, virtual


def card_names(card: PcscStack) -> list[str]:
    return [credential.name.decode() for credential in card.card_state().credentials]


def proxy_seed(aws: Aws, serial: str) -> str:
    """Return the device's seed in base32 as the proxy captured it from CreateVirtualMFADevice."""
    with aws.proxy.state.lock:
        key = aws.proxy.state.seeds[serial]
    return base64.b32encode(key).decode("ascii").rstrip("=")


def register(awsu: Awsu, *args: str, env: dict[str, str] | None = None) -> Result:
    return awsu.run("register", *args, answer_prompts=False, env=awsu.env(env))


def ok(result: Result) -> Result:
    assert result.returncode == 0, result.describe()
    return result


def qr_modules(stderr: str) -> list[list[bool]]:
    """Read the QR drawing on stderr back into rows of modules (True is dark)."""
    rows: list[list[bool]] = []
    for line in stderr.splitlines():
        if UPPER_HALF_BLOCK not in line:
            continue
        top: list[bool] = []
        bottom: list[bool] = []
        foreground_dark = background_dark = False
        position = 0
        while position < len(line):
            match = ANSI_SEQUENCE.match(line, position)
            if match:
                for code in match.group(1).split(";"):
                    if code in ("30", "97"):
                        foreground_dark = code == "30"
                    elif code in ("40", "107"):
                        background_dark = code == "40"
                position = match.end()
                continue
            assert line[position] == UPPER_HALF_BLOCK, f"unexpected character {line[position]!r} in the QR drawing"
            top.append(foreground_dark)
            bottom.append(background_dark)
            position += 1
        rows += [top, bottom]
    return rows


def decode_qr(rows: list[list[bool]], scale: int = 6, margin: int = 4) -> list[str]:
    """Decode a module matrix with zxing-cpp, drawn as a grayscale image with a white margin."""
    width = (len(rows[0]) + 2 * margin) * scale
    height = (len(rows) + 2 * margin) * scale
    pixels = bytearray(b"\xff" * (width * height))
    for row_index, row in enumerate(rows):
        for column_index, dark in enumerate(row):
            if not dark:
                continue
            for dy in range(scale):
                start = ((row_index + margin) * scale + dy) * width + (column_index + margin) * scale
                pixels[start : start + scale] = b"\x00" * scale
    image = memoryview(bytes(pixels)).cast("B", shape=[height, width])
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


# register


def test_register_enables_device_on_card(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)

    result = ok(register(awsu, USER, "--qr=false"))

    assert result.stdout == SERIAL + "\n"
    assigned, virtual = iam_devices(aws)
    assert assigned == [SERIAL]
    assert virtual == [SERIAL]
    enables = [request for request in aws.proxy.stats()["requests"] if request["action"] == "EnableMFADevice"]
    assert [request["result"] for request in enables] == ["forwarded"], "the proxy rejected the codes"
    assert card_names(card) == [credential_name(SERIAL)]
    seed = proxy_seed(aws, SERIAL)
    assert seed not in result.stderr, "the secret was printed without --qr"
    assert seed not in result.stdout


def test_register_uses_iam_endpoint(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}", "AWS_ENDPOINT_URL_IAM": aws.proxy.url}

    result = ok(register(awsu, USER, "--qr=false", env=env))

    assert result.stdout == SERIAL + "\n"
    assigned, _ = iam_devices(aws)
    assert assigned == [SERIAL]


def test_register_code_matches_ykman(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    ok(register(awsu, USER, "--qr=false"))
    name = credential_name(SERIAL)

    def both_codes() -> tuple[str, str]:
        from_awsu = ok(awsu.run("token", "--mfa", SERIAL, answer_prompts=False)).stdout.strip()
        from_ykman = card.ykman("oath", "accounts", "code", "--single", name).stdout.strip()
        return from_awsu, from_ykman

    (from_awsu, from_ykman), step = in_one_step(both_codes)

    assert from_awsu == from_ykman
    assert from_awsu == totp(proxy_seed(aws, SERIAL), step)


def test_run_after_register_waits_for_next_step(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    alice = aws.users[USER]
    registered_at = time_step(time.time())
    ok(register(awsu, USER, "--qr=false"))
    awsu.write_files(
        credentials=f"[alice]\naws_access_key_id = {alice.access_key_id}\n"
        f"aws_secret_access_key = {alice.secret_access_key}\nmfa_serial = {SERIAL}\n"
    )

    result = ok(awsu.run("-p", USER, answer_prompts=False, timeout=120))

    # Register used the codes of the previous and the current step; GetSessionToken must use
    # a later one, which the proxy would otherwise reject as reused.
    assert "already used" in result.stderr, result.describe()
    assert time_step(time.time()) >= registered_at + 1
    session_tokens = [r for r in aws.proxy.stats()["requests"] if r["action"] == "GetSessionToken"]
    assert [request["result"] for request in session_tokens] == ["forwarded"]


def test_register_with_path_name_and_touch(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    # The card's default touch arrives after 1 s, later than awsu's notice.
    serial = mfa_arn("team/laptop")

    result = ok(register(awsu, USER, "--qr=false", "--path", "/team/", "--device-name", "laptop", "--touch"))

    assert result.stdout == serial + "\n"
    assert iam_devices(aws)[0] == [serial]
    credentials = card.card_state().credentials
    assert [credential.name.decode() for credential in credentials] == ["aws/iam/123456789012:team/laptop"]
    assert credentials[0].touch
    assert result.stderr.count("Touch your YubiKey") == 2, result.describe()


def test_enable_failure_leaves_nothing(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    # More faults than the SDK's three attempts.
    aws.proxy.set_fault("EnableMFADevice", count=5, status=500, code="ServiceFailure", message="injected failure")

    result = register(awsu, USER, "--qr=false")

    assert result.returncode != 0
    assert "EnableMFADevice" in result.stderr, result.describe()
    assert "Undone" in result.stderr
    assert "removed the OATH credential" in result.stderr
    assert "deleted the virtual MFA device" in result.stderr
    assert "Not undone" not in result.stderr
    assert result.stdout == ""
    assert iam_devices(aws) == ([], [])
    assert card_names(card) == []


def test_register_without_card_creates_nothing(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    card.stop_card()

    result = register(awsu, USER, "--qr=false")

    assert result.returncode != 0
    assert "CreateVirtualMFADevice" not in aws.actions()
    assert iam_devices(aws) == ([], [])


def test_qr_decodes_to_key_uri(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)

    result = ok(register(awsu, USER, "--issuer", "ACME Corp & Co"))

    seed = proxy_seed(aws, SERIAL)
    expected = (
        f"otpauth://totp/ACME%20Corp%20%26%20Co:{USER}%40{ACCOUNT_ID}"
        f"?secret={seed}&issuer=ACME%20Corp%20%26%20Co"
    )
    assert decode_qr(qr_modules(result.stderr)) == [expected]
    grouped = " ".join(seed[index : index + 4] for index in range(0, len(seed), 4))
    assert f"Secret (base32): {grouped}" in result.stderr
    assert result.stdout == SERIAL + "\n", "stdout holds more than the serial"


# unregister


def test_unregister_removes_device_and_credential(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    ok(register(awsu, USER, "--qr=false"))

    result = ok(awsu.run("unregister", USER, answer_prompts=False))

    actions = [r["action"] for r in aws.proxy.stats()["requests"]]
    steps = [action for action in actions if action in ("ListMFADevices", "DeactivateMFADevice", "DeleteVirtualMFADevice")]
    assert steps == ["ListMFADevices", "DeactivateMFADevice", "DeleteVirtualMFADevice"]
    assert iam_devices(aws) == ([], [])
    assert card_names(card) == []
    assert result.stdout == ""


def test_unregister_with_path_and_name(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    # A second device of another user must stay untouched.
    other_serial, _ = aws.create_mfa_device("bob-phone")
    ok(register(awsu, USER, "--qr=false", "--path", "/team/", "--device-name", "laptop"))

    ok(awsu.run("unregister", USER, answer_prompts=False))

    assert iam_devices(aws) == ([], [other_serial])
    assert card_names(card) == []


def test_unregister_stops_on_failed_deactivation(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    ok(register(awsu, USER, "--qr=false"))
    aws.proxy.set_fault("DeactivateMFADevice", count=5, status=500, code="ServiceFailure", message="injected failure")

    result = awsu.run("unregister", USER, answer_prompts=False)

    assert result.returncode != 0
    assert "deactivating" in result.stderr, result.describe()
    assert "Nothing was changed" in result.stderr, result.describe()
    assert "DeleteVirtualMFADevice" not in aws.actions()
    assert iam_devices(aws) == ([SERIAL], [SERIAL])
    assert card_names(card) == [credential_name(SERIAL)]


def test_unregister_names_device_with_mfa(awsu: Awsu, aws: Aws, card: PcscStack) -> None:
    admin_profile(awsu, aws)
    # An unassigned device, as an interrupted registration elsewhere may leave.
    orphan, _ = aws.create_mfa_device("orphan")

    ok(awsu.run("unregister", USER, "--mfa", orphan, answer_prompts=False))

    assert iam_devices(aws) == ([], [])
    assert "DeactivateMFADevice" not in aws.actions()


# console


class FederationEndpoint:
    """A local stand-in for the federation endpoint's getSigninToken action."""

    TOKEN = "signin+token/with=special&chars"

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                split = urlsplit(self.path)
                query = parse_qs(split.query, keep_blank_values=True)
                endpoint.requests.append(query)
                if split.path != "/federation" or query.get("Action") != ["getSigninToken"]:
                    self.reply(400, b"unexpected request")
                    return
                self.reply(200, json.dumps({"SigninToken": FederationEndpoint.TOKEN}).encode())

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/federation"

    def session(self, index: int = -1) -> dict[str, str]:
        return json.loads(self.requests[index]["Session"][0])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def federation() -> Iterator[FederationEndpoint]:
    endpoint = FederationEndpoint()
    yield endpoint
    endpoint.stop()


def console(awsu: Awsu, federation: FederationEndpoint, *args: str, env: dict[str, str] | None = None) -> Result:
    return awsu.run(
        "console", *args, answer_prompts=False, env=awsu.env({"AWSU_FEDERATION_ENDPOINT": federation.url, **(env or {})})
    )


def login_query(url: str, federation: FederationEndpoint) -> dict[str, list[str]]:
    split = urlsplit(url)
    assert f"{split.scheme}://{split.netloc}{split.path}" == federation.url
    return parse_qs(split.query, keep_blank_values=True, strict_parsing=True)


def role_keys_profile(awsu: Awsu, aws: Aws, role: str, region: str = "eu-west-1", extra: str = "") -> User:
    admin = aws.create_user(ADMIN)
    awsu.write_files(
        credentials=f"[default]\naws_access_key_id = {admin.access_key_id}\n"
        f"aws_secret_access_key = {admin.secret_access_key}\n",
        config=f"[profile ops]\nrole_arn = {role}\nsource_profile = default\nregion = {region}\n{extra}",
    )
    return admin


def test_console_role_signs_in_with_role_credentials(awsu: Awsu, aws: Aws, federation: FederationEndpoint) -> None:
    role = aws.create_role("ops")
    role_keys_profile(awsu, aws, role)
    aws.set_auth(True)

    result = ok(console(awsu, federation, "-p", "ops", "--open=false"))

    assert not result.stdout.endswith("\n")
    query = login_query(result.stdout, federation)
    assert query == {
        "Action": ["login"],
        "Issuer": ["awsu"],
        "Destination": ["https://console.aws.amazon.com/console/home?region=eu-west-1"],
        "SigninToken": [FederationEndpoint.TOKEN],
    }
    assert quote(FederationEndpoint.TOKEN, safe="") in result.stdout, "the token is not percent-encoded"
    request = federation.requests[0]
    assert request["SessionDuration"] == ["3600"]
    session = federation.session()
    # With moto's signature checks on, the session's keys sign a call only if sessionKey is
    # the secret that belongs to sessionId.
    caller = aws.client("sts", session["sessionId"], session["sessionKey"], session["sessionToken"])
    assert caller.get_caller_identity()["Arn"].startswith(f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/ops/")


def test_console_opens_url_with_xdg_open(awsu: Awsu, aws: Aws, federation: FederationEndpoint, tmp_path: Path) -> None:
    role = aws.create_role("ops")
    role_keys_profile(awsu, aws, role)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened"
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}"\n')
    opener.chmod(0o755)

    result = ok(console(awsu, federation, "-p", "ops", env={"PATH": f"{bin_dir}:{awsu.env()['PATH']}"}))

    assert result.stdout == ""
    assert login_query(opened.read_text(), federation)["SigninToken"] == [FederationEndpoint.TOKEN]


def test_console_chained_role_omits_session_duration(awsu: Awsu, aws: Aws, federation: FederationEndpoint) -> None:
    role = aws.create_role("ops")
    serial, _ = aws.create_mfa_device("admin-device")
    role_keys_profile(awsu, aws, role, extra=f"mfa_serial = {serial}\n")

    result = awsu.run("console", "-p", "ops", "--open=false", "-g", "manual",
                      env=awsu.env({"AWSU_FEDERATION_ENDPOINT": federation.url}))

    ok(result)
    assert "SessionDuration" not in federation.requests[0]
    assert "one hour" in result.stderr, result.describe()
    assert login_query(result.stdout, federation)["SigninToken"] == [FederationEndpoint.TOKEN]


def test_console_partition_follows_role_arn(awsu: Awsu, aws: Aws, federation: FederationEndpoint) -> None:
    role_keys_profile(awsu, aws, "arn:aws-us-gov:iam::123456789012:role/ops", region="us-gov-west-1")

    result = ok(console(awsu, federation, "-p", "ops", "--open=false"))

    destination = login_query(result.stdout, federation)["Destination"]
    assert destination == ["https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1"]


def test_console_long_term_keys_use_federation_token(awsu: Awsu, aws: Aws, federation: FederationEndpoint) -> None:
    admin = aws.create_user(ADMIN)
    serial, _ = aws.create_mfa_device("admin-device")
    awsu.write_files(
        credentials=f"[default]\naws_access_key_id = {admin.access_key_id}\n"
        f"aws_secret_access_key = {admin.secret_access_key}\nmfa_serial = {serial}\n"
    )

    result = ok(console(awsu, federation, "--open=false"))

    federation_calls = aws.requests("GetFederationToken")
    assert len(federation_calls) == 1
    assert federation_calls[0].access_key_id == admin.access_key_id
    assert len(federation_calls[0].params["Name"]) <= 32
    assert json.loads(federation_calls[0].params["Policy"])["Statement"][0]["Action"] == "*"
    assert "GetSessionToken" not in aws.actions(), "a one-time password was spent for nothing"
    assert "no MFA context" in result.stderr, result.describe()
    session = federation.session()
    assert session["sessionId"] != admin.access_key_id
    assert session["sessionKey"] in aws.known_secrets(), "sessionKey is not the federation token's secret"
    assert session["sessionKey"] != admin.secret_access_key
    assert session["sessionToken"] in aws.known_secrets()
    assert "SessionDuration" not in federation.requests[0]
    assert login_query(result.stdout, federation)["Destination"] == ["https://console.aws.amazon.com/console/home"]


def test_console_reports_rejected_token_request(awsu: Awsu, aws: Aws, federation: FederationEndpoint) -> None:
    role = aws.create_role("ops")
    role_keys_profile(awsu, aws, role)

    result = awsu.run(
        "console", "-p", "ops", "--open=false", answer_prompts=False,
        env=awsu.env({"AWSU_FEDERATION_ENDPOINT": federation.url.replace("/federation", "/wrong")}),
    )

    assert result.returncode != 0
    assert "HTTP 400" in result.stderr, result.describe()
    assert "Session=" not in result.stderr, "the request URL with the credentials was shown"
