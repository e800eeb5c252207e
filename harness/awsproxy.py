"""Validating reverse proxy in front of moto_server for STS and IAM tests.

Clients set AWS_ENDPOINT_URL to the proxy's URL. Every request is forwarded with its
method, path, end-to-end headers and body bytes unchanged. The Host header is kept too,
because SigV4 signs it, and a chunked body is forwarded de-chunked with a Content-Length.
The proxy responds to a request itself only where it enforces an AWS rule that moto 5.2.5 does not:

- MFA one-time passwords on GetSessionToken, AssumeRole (SerialNumber + TokenCode) and
  EnableMFADevice (AuthenticationCode1 + AuthenticationCode2): TOTP with SHA-1, 6 digits and
  30-second steps, accepted for the previous, current or next step, each step usable once per
  device. Seeds come from CreateVirtualMFADevice responses or from POST /_awsproxy/seed.
- DurationSeconds ranges: GetSessionToken 900..129600, AssumeRole 900..43200, and at most
  3600 for AssumeRole signed with temporary credentials (role chaining).
- GetSessionToken signed with temporary credentials is rejected.

Control endpoints (JSON bodies) live under /_awsproxy/, a path no AWS query API uses:
  GET  /_awsproxy/health
  GET  /_awsproxy/stats       request counts by action and by access key id, plus a request list
  POST /_awsproxy/reset       clears counters, used codes, seeds, faults, Date skew and clock offset
  POST /_awsproxy/seed        {"serial": ARN, "seed": BASE32}
  POST /_awsproxy/fault       {"action": NAME or "*", "count": N, "status": 400,
                               "code": "Throttling", "message": "Rate exceeded", "body": RAW}
  POST /_awsproxy/date_skew   {"seconds": N}: shift the Date header of every response
  POST /_awsproxy/clock       {"offset_seconds": N}: shift the clock used to check TOTP codes
  POST /_awsproxy/latency     {"seconds": N}: hold every AWS request N seconds before handling
                              it, like a network round trip to AWS (benchmarks use it)

Python: start_proxy(upstream_url) returns an AwsProxy with .url, .stats(), .reset(), .stop().
CLI: python -m harness.awsproxy --upstream URL [--port N] [--log FILE]
     python -m harness.awsproxy --with-moto [--auth]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email.utils
import hashlib
import hmac
import http.client
import json
import logging
import re
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("harness.awsproxy")

CONTROL_PREFIX = "/_awsproxy/"

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6

GET_SESSION_TOKEN_DURATION = (900, 129600)
ASSUME_ROLE_DURATION = (900, 43200)
ROLE_CHAINING_MAX_DURATION = 3600

XML_NAMESPACES = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}
ACTION_SERVICES = {
    "GetSessionToken": "sts",
    "AssumeRole": "sts",
    "GetCallerIdentity": "sts",
    "EnableMFADevice": "iam",
    "CreateVirtualMFADevice": "iam",
}

# Error texts as AWS STS and IAM return them. The double space is AWS's.
# NOTE: ENABLE_MFA_INVALID_CODE and SESSION_CREDENTIALS_GET_SESSION_TOKEN are not checked
# against a recorded AWS response; the other texts are.
MFA_INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MFA_UNABLE_TO_VALIDATE = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)
ROLE_CHAINING_LIMIT = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
)
SESSION_CREDENTIALS_GET_SESSION_TOKEN = "Cannot call GetSessionToken with session credentials"
ENABLE_MFA_INVALID_CODE = "Authentication code for device is not valid."

HOP_BY_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}

CREDENTIAL_PATTERN = re.compile(r"Credential=([^/,\s]+)/[^/]*/[^/]*/([^/,\s]+)/")


# ---------------------------------------------------------------- TOTP


def decode_base32_seed(seed: str) -> bytes:
    """Decode a base32 TOTP seed, tolerating lower case, spaces and missing padding."""
    cleaned = seed.replace(" ", "").upper().rstrip("=")
    cleaned += "=" * (-len(cleaned) % 8)
    return base64.b32decode(cleaned)


def totp_code(key: bytes, step: int) -> str:
    """Compute the RFC 6238 code (HMAC-SHA1, 6 digits) for one time step."""
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**TOTP_DIGITS:0{TOTP_DIGITS}d}"


def seed_from_create_response(body: bytes) -> tuple[str, str] | None:
    """Return (serial, base32 seed) from a CreateVirtualMFADevice XML response, if present.

    AWS and moto send Base32StringSeed as a base64 blob whose content is the base32 text.
    """
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    serial = seed = None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "SerialNumber" and element.text:
            serial = element.text.strip()
        elif tag == "Base32StringSeed" and element.text:
            seed = element.text.strip()
    if not serial or not seed:
        return None
    try:
        decoded = base64.b64decode(seed, validate=True).decode("ascii")
        decode_base32_seed(decoded)
        return serial, decoded
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return serial, seed


# ---------------------------------------------------------------- errors


@dataclass
class AwsError(Exception):
    """An error reply in the AWS query protocol's shape."""

    status: int
    code: str
    message: str
    error_type: str = "Sender"


def access_denied(message: str) -> AwsError:
    return AwsError(403, "AccessDenied", message)


def validation_errors(violations: list[str]) -> AwsError:
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return AwsError(400, "ValidationError", f"{count} validation {noun} detected: " + "; ".join(violations))


def render_error(error: AwsError, service: str, json_protocol: bool) -> tuple[bytes, dict[str, str]]:
    """Render an error as AWS does: XML ErrorResponse, or JSON for awsJson clients."""
    request_id = str(uuid.uuid4())
    if json_protocol:
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": request_id,
            "x-amzn-query-error": f"{error.code};{error.error_type}",
        }
        return body, headers
    namespace = XML_NAMESPACES.get(service, XML_NAMESPACES["sts"])
    body = (
        f'<ErrorResponse xmlns="{namespace}">'
        f"<Error><Type>{error.error_type}</Type><Code>{escape_xml(error.code)}</Code>"
        f"<Message>{escape_xml(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return body, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}


def escape_xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- state


@dataclass
class Fault:
    """A canned error returned, without forwarding, for the next `remaining` calls of an action."""

    remaining: int
    status: int
    code: str
    message: str
    body: bytes | None


@dataclass
class RequestRecord:
    action: str
    access_key_id: str | None
    service: str | None
    session_token: bool
    status: int
    result: str
    error_code: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "access_key_id": self.access_key_id,
            "service": self.service,
            "session_token": self.session_token,
            "status": self.status,
            "result": self.result,
            "error_code": self.error_code,
        }


@dataclass
class ProxyState:
    """Seeds, used codes, counters and test settings, shared by all handler threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seeds: dict[str, bytes] = field(default_factory=dict)
    # Time steps already used (or reserved by a call still in flight) per serial number.
    used_steps: dict[str, set[int]] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    date_skew_seconds: float = 0.0
    clock_offset_seconds: float = 0.0
    latency_seconds: float = 0.0
    records: list[RequestRecord] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.seeds.clear()
            self.used_steps.clear()
            self.faults.clear()
            self.date_skew_seconds = 0.0
            self.clock_offset_seconds = 0.0
            self.latency_seconds = 0.0
            self.records.clear()

    def set_seed(self, serial: str, base32_seed: str) -> None:
        key = decode_base32_seed(base32_seed)
        with self.lock:
            self.seeds[serial] = key
            self.used_steps.pop(serial, None)

    def current_step(self) -> int:
        return int((time.time() + self.clock_offset_seconds) // TOTP_STEP_SECONDS)

    def take_fault(self, action: str) -> Fault | None:
        with self.lock:
            for name in (action, "*"):
                fault = self.faults.get(name)
                if fault and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    def record(self, entry: RequestRecord) -> None:
        with self.lock:
            self.records.append(entry)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            records = list(self.records)
            serials = sorted(self.seeds)
        actions: dict[str, int] = {}
        access_keys: dict[str, int] = {}
        by_key: dict[str, dict[str, int]] = {}
        results: dict[str, int] = {}
        for entry in records:
            actions[entry.action] = actions.get(entry.action, 0) + 1
            results[entry.result] = results.get(entry.result, 0) + 1
            key = entry.access_key_id or "-"
            access_keys[key] = access_keys.get(key, 0) + 1
            per_key = by_key.setdefault(key, {})
            per_key[entry.action] = per_key.get(entry.action, 0) + 1
        return {
            "total": len(records),
            "actions": actions,
            "access_keys": access_keys,
            "actions_by_access_key": by_key,
            "results": results,
            "requests": [entry.as_dict() for entry in records],
            "mfa_serials": serials,
        }

    # -- MFA checks. Each returns the (serial, step) pairs it reserved, so that a call
    # rejected upstream can give its codes back.

    def check_token_code(self, serial: str | None, token_code: str | None) -> list[tuple[str, int]]:
        # NOTE: unlike AWS, a code passes for any caller and for a device that was never
        # enabled: the proxy only needs the device's seed.
        if serial is None:
            return []
        with self.lock:
            key = self.seeds.get(serial)
            if key is None:
                raise access_denied(MFA_UNABLE_TO_VALIDATE)
            if not token_code:
                raise access_denied(MFA_INVALID_CODE)
            now = self.current_step()
            matching = [step for step in (now, now - 1, now + 1) if totp_code(key, step) == token_code]
            if not matching:
                raise access_denied(MFA_INVALID_CODE)
            used = self.used_steps.setdefault(serial, set())
            for step in matching:
                if step not in used:
                    used.add(step)
                    return [(serial, step)]
            # NOTE: AWS rejects a reused code; the wording of its message for that case
            # is taken from user reports, not from AWS documentation.
            raise access_denied(MFA_UNABLE_TO_VALIDATE)

    def check_enable_codes(self, serial: str, code1: str, code2: str) -> list[tuple[str, int]]:
        with self.lock:
            key = self.seeds.get(serial)
            if key is None:
                raise AwsError(404, "NoSuchEntity", f"VirtualMFADevice with serial number {serial} doesn't exist.")
            used = self.used_steps.setdefault(serial, set())
            now = self.current_step()
            # Two consecutive codes, both inside the previous..next step window.
            for first in (now - 1, now):
                if first in used or first + 1 in used:
                    continue
                if totp_code(key, first) == code1 and totp_code(key, first + 1) == code2:
                    used.update((first, first + 1))
                    return [(serial, first), (serial, first + 1)]
            raise AwsError(403, "InvalidAuthenticationCode", ENABLE_MFA_INVALID_CODE)

    def release(self, reserved: list[tuple[str, int]]) -> None:
        with self.lock:
            for serial, step in reserved:
                self.used_steps.get(serial, set()).discard(step)


# ---------------------------------------------------------------- request checks


def constraint_violation(raw: str, member: str, constraint: str) -> str:
    return f"Value '{raw}' at '{member}' failed to satisfy constraint: {constraint}"


def duration_violations(raw: str | None, low: int, high: int) -> list[str]:
    if raw is None:
        return []
    try:
        value = int(raw)
    except ValueError:
        return [constraint_violation(raw, "durationSeconds", "Member must be an integer")]
    if value < low:
        return [constraint_violation(raw, "durationSeconds", f"Member must have value greater than or equal to {low}")]
    if value > high:
        return [constraint_violation(raw, "durationSeconds", f"Member must have value less than or equal to {high}")]
    return []


def code_violations(raw: str | None, member: str, pattern: str) -> list[str]:
    if raw is None:
        return []
    violations = []
    if len(raw) < TOTP_DIGITS:
        violations.append(
            constraint_violation(raw, member, f"Member must have length greater than or equal to {TOTP_DIGITS}")
        )
    elif len(raw) > TOTP_DIGITS:
        violations.append(
            constraint_violation(raw, member, f"Member must have length less than or equal to {TOTP_DIGITS}")
        )
    if not raw.isdigit():
        violations.append(
            constraint_violation(raw, member, f"Member must satisfy regular expression pattern: {pattern}")
        )
    return violations


def validate_request(
    state: ProxyState, action: str, params: dict[str, str], session_token: bool
) -> list[tuple[str, int]]:
    """Apply the AWS rules moto skips. Raise AwsError or return reserved MFA steps."""
    if action == "GetSessionToken":
        violations = duration_violations(params.get("DurationSeconds"), *GET_SESSION_TOKEN_DURATION)
        violations += code_violations(params.get("TokenCode"), "tokenCode", r"[\d]*")
        if violations:
            raise validation_errors(violations)
        if session_token:
            raise access_denied(SESSION_CREDENTIALS_GET_SESSION_TOKEN)
        return state.check_token_code(params.get("SerialNumber"), params.get("TokenCode"))

    if action == "AssumeRole":
        duration = params.get("DurationSeconds")
        violations = duration_violations(duration, *ASSUME_ROLE_DURATION)
        violations += code_violations(params.get("TokenCode"), "tokenCode", r"[\d]*")
        if violations:
            raise validation_errors(violations)
        if session_token and duration is not None and int(duration) > ROLE_CHAINING_MAX_DURATION:
            raise AwsError(400, "ValidationError", ROLE_CHAINING_LIMIT)
        return state.check_token_code(params.get("SerialNumber"), params.get("TokenCode"))

    if action == "EnableMFADevice":
        code1 = params.get("AuthenticationCode1", "")
        code2 = params.get("AuthenticationCode2", "")
        violations = code_violations(code1, "authenticationCode1", r"[\d]+")
        violations += code_violations(code2, "authenticationCode2", r"[\d]+")
        if violations:
            raise validation_errors(violations)
        return state.check_enable_codes(params.get("SerialNumber", ""), code1, code2)

    return []


# ---------------------------------------------------------------- HTTP handler


@dataclass
class ParsedRequest:
    action: str
    params: dict[str, str]
    access_key_id: str | None
    service: str | None
    session_token: bool
    json_protocol: bool


def parse_aws_request(path: str, headers: Any, body: bytes) -> ParsedRequest:
    """Extract action, parameters and signer from a query-protocol (or awsJson) request."""
    query = urlsplit(path).query
    params = dict(parse_qsl(query, keep_blank_values=True))
    content_type = (headers.get("Content-Type") or "").lower()
    target = headers.get("X-Amz-Target")
    # NOTE: the awsJson branches (X-Amz-Target, JSON errors) were never exercised, because
    # botocore 1.44 and the Rust SDK both use the query protocol for STS and IAM.
    json_protocol = bool(target) or "application/x-amz-json" in content_type

    if "application/x-www-form-urlencoded" in content_type and body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif json_protocol and body:
        try:
            decoded = json.loads(body)
            if isinstance(decoded, dict):
                for name, value in decoded.items():
                    if not isinstance(value, (dict, list)):
                        params[name] = str(value)
        except ValueError:
            pass

    action = params.get("Action") or (target.rsplit(".", 1)[-1] if target else "") or "-"

    access_key_id = service = None
    match = CREDENTIAL_PATTERN.search(headers.get("Authorization") or "")
    if match:
        access_key_id, service = match.group(1), match.group(2)
    elif "X-Amz-Credential" in params:
        parts = params["X-Amz-Credential"].split("/")
        access_key_id = parts[0]
        service = parts[3] if len(parts) > 3 else None
    service = service or ACTION_SERVICES.get(action)

    session_token = bool(headers.get("X-Amz-Security-Token") or params.get("X-Amz-Security-Token"))
    return ParsedRequest(action, params, access_key_id, service, session_token, json_protocol)


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awsproxy"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 60
    # A reply goes out as two writes, headers then body. With Nagle's algorithm
    # the body waits for the client's delayed ACK of the headers, which stalls
    # every reply after the first on a keep-alive connection by about 40 ms.
    disable_nagle_algorithm = True

    server: "ProxyServer"

    def do_GET(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.handle_any()

    def do_PUT(self) -> None:
        self.handle_any()

    def do_DELETE(self) -> None:
        self.handle_any()

    def do_HEAD(self) -> None:
        self.handle_any()

    def do_PATCH(self) -> None:
        self.handle_any()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self) -> None:
        body = self.read_body()
        if self.path.startswith(CONTROL_PREFIX):
            self.handle_control(body)
            return

        state = self.server.state
        request = parse_aws_request(self.path, self.headers, body)
        if state.latency_seconds > 0:
            time.sleep(state.latency_seconds)

        fault = state.take_fault(request.action)
        if fault is not None:
            self.reply_fault(request, fault)
            return

        try:
            reserved = validate_request(state, request.action, request.params, request.session_token)
        except AwsError as error:
            self.reply_error(request, error, result="rejected")
            return

        try:
            status, reason, headers, response_body = self.forward(body)
        except OSError as error:
            state.release(reserved)
            log.error(
                "action=%s access_key_id=%s forwarding to %s failed: %s",
                request.action,
                request.access_key_id or "-",
                self.server.upstream_url,
                error,
            )
            message = f"awsproxy could not reach upstream {self.server.upstream_url}: {error}"
            failure = AwsError(502, "ServiceUnavailable", message, "Receiver")
            self.reply_error(request, failure, result="upstream_error")
            return

        if not 200 <= status < 300:
            state.release(reserved)
        elif request.action == "CreateVirtualMFADevice":
            found = seed_from_create_response(response_body)
            if found:
                state.set_seed(*found)
            else:
                log.warning("CreateVirtualMFADevice response carried no SerialNumber or Base32StringSeed")

        error_code = None if status < 400 else extract_error_code(response_body)
        self.record(request, status, "forwarded", error_code)
        self.send_reply(status, reason, headers, response_body)

    def forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = urlsplit(self.server.upstream_url)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port or 80, timeout=60)
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            for name, value in self.headers.items():
                lowered = name.lower()
                if lowered in HOP_BY_HOP_HEADERS or (chunked and lowered == "content-length"):
                    continue
                connection.putheader(name, value)
            if chunked or self.headers.get("Content-Length") is None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            response_body = response.read()
            headers = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in HOP_BY_HOP_HEADERS and name.lower() not in ("content-length", "date")
            ]
            return response.status, response.reason, headers, response_body
        finally:
            connection.close()

    def send_reply(self, status: int, reason: str | None, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Date", self.skewed_date())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def skewed_date(self) -> str:
        return email.utils.formatdate(time.time() + self.server.state.date_skew_seconds, usegmt=True)

    def reply_error(self, request: ParsedRequest, error: AwsError, result: str) -> None:
        body, headers = render_error(error, request.service or "sts", request.json_protocol)
        self.record(request, error.status, result, error.code)
        self.send_reply(error.status, None, list(headers.items()), body)

    def reply_fault(self, request: ParsedRequest, fault: Fault) -> None:
        if fault.body is not None:
            self.record(request, fault.status, "fault", fault.code)
            self.send_reply(fault.status, None, [("Content-Type", "text/xml")], fault.body)
            return
        error_type = "Receiver" if fault.status >= 500 else "Sender"
        body, headers = render_error(
            AwsError(fault.status, fault.code, fault.message, error_type),
            request.service or "sts",
            request.json_protocol,
        )
        self.record(request, fault.status, "fault", fault.code)
        self.send_reply(fault.status, None, list(headers.items()), body)

    def record(self, request: ParsedRequest, status: int, result: str, error_code: str | None) -> None:
        self.server.state.record(
            RequestRecord(
                request.action,
                request.access_key_id,
                request.service,
                request.session_token,
                status,
                result,
                error_code,
            )
        )
        # Only ids and outcomes are logged, never codes, secrets or session tokens.
        log.info(
            "action=%s access_key_id=%s session_token=%s status=%d result=%s%s",
            request.action,
            request.access_key_id or "-",
            "yes" if request.session_token else "no",
            status,
            result,
            f" error_code={error_code}" if error_code else "",
        )

    # -- control endpoints

    def handle_control(self, body: bytes) -> None:
        state = self.server.state
        name = urlsplit(self.path).path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the request body must be a JSON object")
            if self.command == "GET" and name == "stats":
                self.reply_json(200, state.stats())
            elif self.command == "GET" and name == "health":
                self.reply_json(200, {"status": "ok", "upstream": self.server.upstream_url})
            elif self.command == "POST" and name == "reset":
                state.reset()
                self.reply_json(200, {"status": "ok"})
            elif self.command == "POST" and name == "seed":
                state.set_seed(require_str(payload, "serial"), require_str(payload, "seed"))
                self.reply_json(200, {"status": "ok"})
            elif self.command == "POST" and name == "fault":
                action, fault = fault_from_payload(payload)
                with state.lock:
                    state.faults[action] = fault
                self.reply_json(200, {"status": "ok"})
            elif self.command == "POST" and name == "date_skew":
                with state.lock:
                    state.date_skew_seconds = require_number(payload, "seconds")
                self.reply_json(200, {"status": "ok"})
            elif self.command == "POST" and name == "clock":
                with state.lock:
                    state.clock_offset_seconds = require_number(payload, "offset_seconds")
                self.reply_json(200, {"status": "ok"})
            elif self.command == "POST" and name == "latency":
                seconds = require_number(payload, "seconds")
                if seconds < 0:
                    raise ValueError("seconds must not be negative")
                with state.lock:
                    state.latency_seconds = seconds
                self.reply_json(200, {"status": "ok"})
            else:
                self.reply_json(404, {"error": f"unknown control endpoint {self.command} {CONTROL_PREFIX}{name}"})
        except (ValueError, binascii.Error) as error:
            log.warning("rejected control request %s %s%s: %s", self.command, CONTROL_PREFIX, name, error)
            self.reply_json(400, {"error": f"invalid request to {CONTROL_PREFIX}{name}: {error}"})

    def reply_json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_reply(status, None, [("Content-Type", "application/json")], body)


def require_str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} is missing or not a non-empty string")
    return value


def require_number(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"field {name!r} is missing or not a number")
    return float(value)


def fault_from_payload(payload: dict[str, Any]) -> tuple[str, Fault]:
    action = require_str(payload, "action")
    count = payload.get("count", 1)
    status = payload.get("status", 400)
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"field 'count' must be a non-negative integer, got {count!r}")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"field 'status' must be an HTTP error status 400..599, got {status!r}")
    raw_body = payload.get("body")
    if raw_body is not None and not isinstance(raw_body, str):
        raise ValueError("field 'body' must be a string")
    fault = Fault(
        remaining=count,
        status=status,
        code=str(payload.get("code", "Throttling")),
        message=str(payload.get("message", "Rate exceeded")),
        body=raw_body.encode() if raw_body is not None else None,
    )
    return action, fault


def extract_error_code(body: bytes) -> str | None:
    match = re.search(rb"<Code>([^<]+)</Code>", body)
    return match.group(1).decode("utf-8", "replace") if match else None


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], upstream_url: str, state: ProxyState) -> None:
        super().__init__(address, ProxyHandler)
        self.upstream_url = upstream_url.rstrip("/")
        self.state = state


# ---------------------------------------------------------------- public API


class AwsProxy:
    """A running proxy. Control it through these methods or the /_awsproxy/ endpoints."""

    def __init__(self, server: ProxyServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.state = server.state

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upstream_url(self) -> str:
        return self._server.upstream_url

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def reset(self) -> None:
        self.state.reset()

    def set_seed(self, serial: str, base32_seed: str) -> None:
        self.state.set_seed(serial, base32_seed)

    def set_fault(
        self,
        action: str,
        count: int = 1,
        status: int = 400,
        code: str = "Throttling",
        message: str = "Rate exceeded",
        body: str | None = None,
    ) -> None:
        payload = {"action": action, "count": count, "status": status, "code": code, "message": message, "body": body}
        _, fault = fault_from_payload(payload)
        with self.state.lock:
            self.state.faults[action] = fault

    def set_date_skew(self, seconds: float) -> None:
        with self.state.lock:
            self.state.date_skew_seconds = float(seconds)

    def set_clock_offset(self, seconds: float) -> None:
        with self.state.lock:
            self.state.clock_offset_seconds = float(seconds)

    def set_latency(self, seconds: float) -> None:
        with self.state.lock:
            self.state.latency_seconds = float(seconds)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        log.info("awsproxy on %s stopped", self.url)

    def __enter__(self) -> "AwsProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_proxy(upstream_url: str, port: int = 0, host: str = "127.0.0.1") -> AwsProxy:
    """Start the proxy in a background thread. Port 0 picks a free port."""
    upstream = urlsplit(upstream_url)
    if upstream.scheme != "http" or not upstream.hostname:
        raise ValueError(f"upstream URL must look like http://127.0.0.1:PORT, got {upstream_url!r}")
    server = ProxyServer((host, port), upstream_url, ProxyState())
    thread = threading.Thread(target=server.serve_forever, name="awsproxy", daemon=True)
    thread.start()
    proxy = AwsProxy(server, thread)
    log.info("awsproxy listening on %s, forwarding to %s", proxy.url, proxy.upstream_url)
    return proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the validating STS/IAM proxy on 127.0.0.1, print its URL and wait for SIGINT or SIGTERM."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--upstream", help="moto_server URL to forward to, e.g. http://127.0.0.1:5000")
    target.add_argument(
        "--with-moto", action="store_true", help="start a moto_server on a free port and forward to it"
    )
    parser.add_argument("--auth", action="store_true", help="with --with-moto: turn on moto's SigV4 and IAM checking")
    parser.add_argument("--port", type=int, default=0, help="TCP port for the proxy (default: a free port)")
    parser.add_argument("--log", help="file for the one-line-per-request log (default: stderr)")
    args = parser.parse_args(argv)

    handler: logging.Handler = logging.FileHandler(args.log) if args.log else logging.StreamHandler(sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", handlers=[handler])

    from harness.moto_harness import MotoServer, MotoServerError, wait_for_signal

    moto = None
    try:
        if args.with_moto:
            moto = MotoServer()
            moto.start()
            if args.auth:
                moto.set_auth(True)
            upstream_url = moto.url
        else:
            upstream_url = args.upstream
        proxy = start_proxy(upstream_url, port=args.port)
    except (MotoServerError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        if moto:
            moto.stop()
        return 1

    try:
        print(proxy.url, flush=True)
        if moto:
            print(f"upstream moto_server: {moto.url}", file=sys.stderr, flush=True)
        wait_for_signal()
    finally:
        proxy.stop()
        if moto:
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
