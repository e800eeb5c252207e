"""Tests for harness/awsproxy.py with boto3 against the proxy in front of a real moto_server.

Run: /work/main/.venv/bin/pytest harness/tests/test_awsproxy.py
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import logging
import os
import struct
import threading
import time
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.awsproxy import AwsProxy, start_proxy
from harness.moto_harness import MotoServer

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# AWS's documented example credentials and account.
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCOUNT_ID = "123456789012"
USER_NAME = "alice"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/deploy"

INVALID_CODE_MESSAGE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
UNABLE_TO_VALIDATE_PREFIX = "MultiFactorAuthentication failed, unable to validate MFA code"
ROLE_CHAINING_MESSAGE = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
)

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
# botocore checks the lower bound of DurationSeconds itself, so tests of the proxy's
# range checks turn that client-side validation off.
NO_CLIENT_VALIDATION = Config(retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False)


# ---------------------------------------------------------------- independent RFC 6238


def totp(base32_seed: str, unix_time: float) -> str:
    padded = base32_seed + "=" * (-len(base32_seed) % 8)
    key = base64.b32decode(padded)
    counter = int(unix_time // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{value:06d}"


def wrong_code(base32_seed: str) -> str:
    """Return a 6-digit code valid for none of the previous, current and next steps."""
    now = time.time()
    window = {totp(base32_seed, now + delta) for delta in (-60, -30, 0, 30, 60)}
    candidate = 123456
    while f"{candidate:06d}" in window:
        candidate += 1
    return f"{candidate:06d}"


def test_totp_matches_rfc6238_vector() -> None:
    # RFC 6238 appendix B, SHA-1 seed "12345678901234567890" at T=59 gives 94287082 (8 digits).
    seed = base64.b32encode(b"12345678901234567890").decode()
    assert totp(seed, 59) == "287082"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy_server(moto: MotoServer) -> Iterator[AwsProxy]:
    with start_proxy(moto.url) as proxy:
        yield proxy


@pytest.fixture
def proxy(moto: MotoServer, proxy_server: AwsProxy) -> Iterator[AwsProxy]:
    moto.set_auth(False)
    moto.reset()
    proxy_server.reset()
    yield proxy_server
    moto.set_auth(False)


def client(
    proxy: AwsProxy,
    service: str,
    access_key_id: str = EXAMPLE_ACCESS_KEY_ID,
    secret_access_key: str = EXAMPLE_SECRET_ACCESS_KEY,
    session_token: str | None = None,
    config: Config = NO_RETRIES,
) -> Any:
    return boto3.client(
        service,
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        config=config,
    )


def control(proxy: AwsProxy, method: str, name: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        body = json.dumps(payload).encode() if payload is not None else None
        connection.request(method, f"/_awsproxy/{name}", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def mfa_device(proxy: AwsProxy) -> tuple[str, str]:
    """Create a user and a virtual MFA device through the proxy; return (serial, base32 seed)."""
    iam = client(proxy, "iam")
    iam.create_user(UserName=USER_NAME)
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=USER_NAME)["VirtualMFADevice"]
    # botocore decodes the base64 blob, leaving the base32 text as bytes.
    return device["SerialNumber"], device["Base32StringSeed"].decode("ascii")


def create_role(proxy: AwsProxy) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    client(proxy, "iam").create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps(trust))


def expect_error(call: Any, status: int, code: str) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["Error"]["Code"] == code
    assert response["Error"]["Type"] == "Sender"
    return response


# ---------------------------------------------------------------- MFA codes


def test_seed_captured_from_create_response(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    assert serial == f"arn:aws:iam::{ACCOUNT_ID}:mfa/{USER_NAME}"
    assert len(seed) == 64
    assert proxy.stats()["mfa_serials"] == [serial]


def test_get_session_token_right_code(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    sts = client(proxy, "sts")

    response = sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, time.time()), DurationSeconds=3600)

    assert response["Credentials"]["SessionToken"]


def test_get_session_token_wrong_code(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    sts = client(proxy, "sts")

    response = expect_error(
        lambda: sts.get_session_token(SerialNumber=serial, TokenCode=wrong_code(seed)), 403, "AccessDenied"
    )

    assert response["Error"]["Message"] == INVALID_CODE_MESSAGE
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "text/xml"


def test_get_session_token_reused_code(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    sts = client(proxy, "sts")
    code = totp(seed, time.time())
    sts.get_session_token(SerialNumber=serial, TokenCode=code)

    response = expect_error(lambda: sts.get_session_token(SerialNumber=serial, TokenCode=code), 403, "AccessDenied")

    assert response["Error"]["Message"].startswith(UNABLE_TO_VALIDATE_PREFIX)


def test_adjacent_steps_accepted_far_steps_rejected(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    sts = client(proxy, "sts")
    # Pin the proxy's clock to the middle of a step so that the test cannot cross a step boundary.
    now = time.time()
    middle = (now // 30) * 30 + 15
    proxy.set_clock_offset(middle - now)

    for delta in (-90, -60, 60, 90):
        expect_error(
            lambda: sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, middle + delta)),
            403,
            "AccessDenied",
        )
    for delta in (-30, 0, 30):
        sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, middle + delta))


def test_unknown_serial_rejected(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts")

    response = expect_error(
        lambda: sts.get_session_token(SerialNumber=f"arn:aws:iam::{ACCOUNT_ID}:mfa/nobody", TokenCode="123456"),
        403,
        "AccessDenied",
    )

    assert response["Error"]["Message"].startswith(UNABLE_TO_VALIDATE_PREFIX)


def test_seed_from_control_endpoint(proxy: AwsProxy) -> None:
    serial = f"arn:aws:iam::{ACCOUNT_ID}:mfa/hardware"
    seed = base64.b32encode(b"0123456789abcdefghij").decode()
    status, _ = control(proxy, "POST", "seed", {"serial": serial, "seed": seed})
    assert status == 200
    sts = client(proxy, "sts")

    sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, time.time()))

    expect_error(lambda: sts.get_session_token(SerialNumber=serial, TokenCode=wrong_code(seed)), 403, "AccessDenied")


def test_malformed_token_code_is_validation_error(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, _ = mfa_device
    sts = client(proxy, "sts", config=NO_CLIENT_VALIDATION)

    response = expect_error(
        lambda: sts.get_session_token(SerialNumber=serial, TokenCode="12a45"), 400, "ValidationError"
    )

    assert response["Error"]["Message"].startswith("2 validation errors detected: Value '12a45' at 'tokenCode'")


def test_assume_role_checks_mfa(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    create_role(proxy)
    sts = client(proxy, "sts")

    expect_error(
        lambda: sts.assume_role(
            RoleArn=ROLE_ARN, RoleSessionName="s1", SerialNumber=serial, TokenCode=wrong_code(seed)
        ),
        403,
        "AccessDenied",
    )
    response = sts.assume_role(
        RoleArn=ROLE_ARN, RoleSessionName="s1", SerialNumber=serial, TokenCode=totp(seed, time.time())
    )

    assert response["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_enable_mfa_device_consecutive_codes(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    iam = client(proxy, "iam")
    now = time.time()

    iam.enable_mfa_device(
        UserName=USER_NAME,
        SerialNumber=serial,
        AuthenticationCode1=totp(seed, now),
        AuthenticationCode2=totp(seed, now + 30),
    )

    devices = iam.list_mfa_devices(UserName=USER_NAME)["MFADevices"]
    assert [device["SerialNumber"] for device in devices] == [serial]


def test_enable_mfa_device_wrong_codes(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    iam = client(proxy, "iam")
    now = time.time()
    cases = [
        (wrong_code(seed), wrong_code(seed)),
        (totp(seed, now), totp(seed, now + 60)),
        (totp(seed, now + 30), totp(seed, now)),
        (totp(seed, now), totp(seed, now)),
    ]

    for code1, code2 in cases:
        response = expect_error(
            lambda: iam.enable_mfa_device(
                UserName=USER_NAME, SerialNumber=serial, AuthenticationCode1=code1, AuthenticationCode2=code2
            ),
            403,
            "InvalidAuthenticationCode",
        )
        assert response["Error"]["Message"] == "Authentication code for device is not valid."

    assert iam.list_mfa_devices(UserName=USER_NAME)["MFADevices"] == []


def test_concurrent_same_code_used_once(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    sts = client(proxy, "sts")
    code = totp(seed, time.time())
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            sts.get_session_token(SerialNumber=serial, TokenCode=code)
            outcome = "ok"
        except ClientError as error:
            outcome = error.response["Error"]["Code"]
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 1
    assert outcomes.count("AccessDenied") == 7


# ---------------------------------------------------------------- durations


def test_duration_ranges(proxy: AwsProxy) -> None:
    create_role(proxy)
    sts = client(proxy, "sts", config=NO_CLIENT_VALIDATION)
    cases = [
        ("GetSessionToken", 899, "greater than or equal to 900"),
        ("GetSessionToken", 129601, "less than or equal to 129600"),
        ("AssumeRole", 899, "greater than or equal to 900"),
        ("AssumeRole", 43201, "less than or equal to 43200"),
    ]

    for action, duration, constraint in cases:
        if action == "GetSessionToken":
            call = lambda: sts.get_session_token(DurationSeconds=duration)  # noqa: E731
        else:
            call = lambda: sts.assume_role(  # noqa: E731
                RoleArn=ROLE_ARN, RoleSessionName="s1", DurationSeconds=duration
            )
        response = expect_error(call, 400, "ValidationError")
        assert response["Error"]["Message"] == (
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
            f"failed to satisfy constraint: Member must have value {constraint}"
        )

    sts.get_session_token(DurationSeconds=900)
    sts.get_session_token(DurationSeconds=129600)
    sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1", DurationSeconds=900)
    sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s2", DurationSeconds=43200)


def test_role_chaining_duration_limit(proxy: AwsProxy) -> None:
    create_role(proxy)
    credentials = client(proxy, "sts").get_session_token()["Credentials"]
    chained = client(
        proxy,
        "sts",
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )

    response = expect_error(
        lambda: chained.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1", DurationSeconds=7200),
        400,
        "ValidationError",
    )
    assert response["Error"]["Message"] == ROLE_CHAINING_MESSAGE

    chained.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1", DurationSeconds=3600)
    requests = proxy.stats()["requests"]
    assert [(r["action"], r["session_token"], r["status"]) for r in requests[-2:]] == [
        ("AssumeRole", True, 400),
        ("AssumeRole", True, 200),
    ]


def test_get_session_token_with_session_credentials(proxy: AwsProxy) -> None:
    credentials = client(proxy, "sts").get_session_token()["Credentials"]
    temporary = client(
        proxy, "sts", credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )

    response = expect_error(lambda: temporary.get_session_token(), 403, "AccessDenied")

    assert response["Error"]["Message"] == "Cannot call GetSessionToken with session credentials"


# ---------------------------------------------------------------- stats, faults, Date, log


def test_stats_count_each_action(proxy: AwsProxy, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    sts = client(proxy, "sts")
    sts.get_caller_identity()
    sts.get_caller_identity()
    sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, time.time()))
    with pytest.raises(ClientError):
        sts.get_session_token(SerialNumber=serial, TokenCode=wrong_code(seed))

    status, stats = control(proxy, "GET", "stats")

    assert status == 200
    assert stats["actions"] == {
        "CreateUser": 1,
        "CreateVirtualMFADevice": 1,
        "GetCallerIdentity": 2,
        "GetSessionToken": 2,
    }
    assert stats["access_keys"] == {EXAMPLE_ACCESS_KEY_ID: 6}
    assert stats["actions_by_access_key"][EXAMPLE_ACCESS_KEY_ID]["GetSessionToken"] == 2
    assert stats["results"] == {"forwarded": 5, "rejected": 1}
    assert stats["total"] == 6

    status, _ = control(proxy, "POST", "reset")
    assert status == 200
    assert proxy.stats()["total"] == 0
    assert proxy.stats()["mfa_serials"] == []


def test_fault_injection_then_pass(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts")
    status, _ = control(proxy, "POST", "fault", {"action": "GetCallerIdentity", "count": 2})
    assert status == 200

    for _ in range(2):
        response = expect_error(sts.get_caller_identity, 400, "Throttling")
        assert response["Error"]["Message"] == "Rate exceeded"
    assert sts.get_caller_identity()["Account"] == ACCOUNT_ID

    assert proxy.stats()["results"] == {"fault": 2, "forwarded": 1}


def test_fault_injection_status_and_body(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts")
    proxy.set_fault("GetSessionToken", count=1, status=503, code="ServiceUnavailable", message="Service is unavailable")
    raw = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Custom</Code>"
        "<Message>raw body</Message></Error></ErrorResponse>"
    )
    control(proxy, "POST", "fault", {"action": "GetCallerIdentity", "count": 1, "status": 400, "body": raw})

    with pytest.raises(ClientError) as caught:
        sts.get_session_token()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    response = expect_error(sts.get_caller_identity, 400, "Custom")
    assert response["Error"]["Message"] == "raw body"

    sts.get_session_token()
    sts.get_caller_identity()


def test_fault_injection_retried_by_sdk(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts", config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))
    proxy.set_fault("GetCallerIdentity", count=2)

    assert sts.get_caller_identity()["Account"] == ACCOUNT_ID

    assert proxy.stats()["actions"] == {"GetCallerIdentity": 3}


def test_control_endpoint_rejects_bad_input(proxy: AwsProxy) -> None:
    status, payload = control(proxy, "POST", "fault", {"action": "GetCallerIdentity", "count": -1})
    assert status == 400
    assert "count" in payload["error"]

    status, payload = control(proxy, "POST", "seed", {"serial": "arn:aws:iam::123456789012:mfa/x"})
    assert status == 400
    assert "seed" in payload["error"]

    status, _ = control(proxy, "GET", "no_such_endpoint")
    assert status == 404


def test_latency(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts")
    status, payload = control(proxy, "POST", "latency", {"seconds": -1})
    assert status == 400
    assert "negative" in payload["error"]

    status, _ = control(proxy, "POST", "latency", {"seconds": 0.5})
    assert status == 200
    started = time.monotonic()
    sts.get_caller_identity()
    # A lower bound only: the proxy must have held the request at least that long.
    assert time.monotonic() - started >= 0.5

    proxy.reset()
    assert proxy.state.latency_seconds == 0.0


def test_date_skew(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts")
    status, _ = control(proxy, "POST", "date_skew", {"seconds": -3600})
    assert status == 200

    headers = sts.get_caller_identity()["ResponseMetadata"]["HTTPHeaders"]

    served = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
    assert abs(served - (time.time() - 3600)) < 5

    proxy.set_date_skew(0)
    headers = sts.get_caller_identity()["ResponseMetadata"]["HTTPHeaders"]
    served = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
    assert abs(served - time.time()) < 5


def test_log_has_no_codes_or_secrets(
    proxy: AwsProxy, mfa_device: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    serial, seed = mfa_device
    caplog.set_level(logging.INFO, logger="harness.awsproxy")
    code = totp(seed, time.time())
    credentials = client(proxy, "sts").get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]

    lines = [record.getMessage() for record in caplog.records if record.name == "harness.awsproxy"]

    assert any("action=GetSessionToken" in line and f"access_key_id={EXAMPLE_ACCESS_KEY_ID}" in line for line in lines)
    text = "\n".join(lines)
    assert code not in text
    assert seed not in text
    assert EXAMPLE_SECRET_ACCESS_KEY not in text
    assert credentials["SessionToken"] not in text


def test_concurrent_requests(proxy: AwsProxy) -> None:
    sts = client(proxy, "sts", config=Config(retries={"total_max_attempts": 1}, max_pool_connections=32))
    barrier = threading.Barrier(32)
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        account = sts.get_caller_identity()["Account"]
        with lock:
            results.append(account)

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [ACCOUNT_ID] * 32
    assert proxy.stats()["actions"] == {"GetCallerIdentity": 32}


# ---------------------------------------------------------------- with moto's auth checking on


def test_auth_on_counts_signing_key(proxy: AwsProxy, moto: MotoServer, mfa_device: tuple[str, str]) -> None:
    serial, seed = mfa_device
    iam = client(proxy, "iam")
    key = iam.create_access_key(UserName=USER_NAME)["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=USER_NAME, PolicyName="all", PolicyDocument=json.dumps(policy))
    moto.set_auth(True)
    user_sts = client(proxy, "sts", key["AccessKeyId"], key["SecretAccessKey"])

    user_sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, time.time()))
    expect_error(client(proxy, "sts", key["AccessKeyId"], "x" * 40).get_caller_identity, 403, "SignatureDoesNotMatch")
    expect_error(client(proxy, "sts").get_caller_identity, 403, "InvalidClientTokenId")

    by_key = proxy.stats()["actions_by_access_key"]
    assert by_key[key["AccessKeyId"]] == {"GetSessionToken": 1, "GetCallerIdentity": 1}
    assert by_key[EXAMPLE_ACCESS_KEY_ID]["GetCallerIdentity"] == 1


def test_moto_auth_facts(proxy: AwsProxy, moto: MotoServer) -> None:
    """Record which credentials moto 5.2.5 accepts with auth on, since tests rely on it."""
    iam = client(proxy, "iam")
    iam.create_user(UserName=USER_NAME)
    key = iam.create_access_key(UserName=USER_NAME)["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=USER_NAME, PolicyName="all", PolicyDocument=json.dumps(policy))
    create_role(proxy)
    iam.put_role_policy(RoleName="deploy", PolicyName="all", PolicyDocument=json.dumps(policy))
    moto.set_auth(True)
    user_sts = client(proxy, "sts", key["AccessKeyId"], key["SecretAccessKey"])

    session = user_sts.get_session_token()["Credentials"]
    assert session["AccessKeyId"] == EXAMPLE_ACCESS_KEY_ID
    session_sts = client(proxy, "sts", session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    expect_error(session_sts.get_caller_identity, 403, "InvalidClientTokenId")

    role = user_sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1")["Credentials"]
    assert role["AccessKeyId"].startswith("ASIA")
    role_sts = client(proxy, "sts", role["AccessKeyId"], role["SecretAccessKey"], role["SessionToken"])
    assert role_sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deploy/s1"
    chained = role_sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s2", DurationSeconds=3600)["Credentials"]
    assert chained["AccessKeyId"] != role["AccessKeyId"]


def test_chunked_request_forwarded(proxy: AwsProxy) -> None:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.putrequest("POST", "/")
        connection.putheader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        connection.putheader("Transfer-Encoding", "chunked")
        # moto routes a request by the service in the credential scope. With auth off it
        # does not check the signature.
        connection.putheader(
            "Authorization",
            f"AWS4-HMAC-SHA256 Credential={EXAMPLE_ACCESS_KEY_ID}/20260101/us-east-1/sts/aws4_request, "
            "SignedHeaders=host, Signature=0",
        )
        connection.endheaders()
        connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert b"<Account>123456789012</Account>" in payload
    assert proxy.stats()["actions"] == {"GetCallerIdentity": 1}


def test_upstream_down_returns_502() -> None:
    with MotoServer() as server:
        dead_url = server.url
    with start_proxy(dead_url) as proxy:
        sts = client(proxy, "sts")

        with pytest.raises(ClientError) as caught:
            sts.get_caller_identity()

        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert proxy.stats()["results"] == {"upstream_error": 1}
