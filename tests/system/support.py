"""Helpers for the end-to-end tests of awsu: moto state, TOTP codes, running awsu, checks.

Every awsu run gets an environment built from scratch: PATH, HOME and what the test sets.
Its MFA prompts are answered with the TOTP code computed from the device's seed, and its
stderr is scanned for every secret known to the test at that point.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shlex
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXTERNAL_ID = "1a03197b-3cb5-491b-bc06-84795afc95ef"
PROMPT = "Enter the one-time password for "
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
TRUST_ANYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
)
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})
TOTP_STEP_SECONDS = 30


def totp(seed: str, step: int) -> str:
    """Compute the RFC 6238 code (HMAC-SHA1, 6 digits) of a base32 seed for one time step."""
    key = base64.b32decode(seed.upper() + "=" * (-len(seed) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def mfa_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:mfa/{name}"


def role_arn(name: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


@dataclass
class User:
    name: str
    access_key_id: str
    secret_access_key: str
    serial: str | None
    seed: str | None


@dataclass
class Request:
    """One request the proxy saw: its action, parameters and signing key."""

    action: str
    params: dict[str, str]
    access_key_id: str | None
    session_token: bool


class Spy:
    """Records each request's parameters and the secrets in each response of the proxy.

    The proxy's own statistics count actions and signing keys but keep no parameters, so
    the spy wraps two of its functions in this process (the proxy runs in a thread here).
    """

    SECRET_ELEMENTS = re.compile(rb"<(SecretAccessKey|SessionToken)>([^<]+)</\1>")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.secrets: set[str] = set()

    def install(self, awsproxy_module: Any) -> None:
        original_parse = awsproxy_module.parse_aws_request
        original_send = awsproxy_module.ProxyHandler.send_reply
        spy = self

        def parse(path: str, headers: Any, body: bytes) -> Any:
            parsed = original_parse(path, headers, body)
            with spy.lock:
                spy.requests.append(
                    Request(parsed.action, dict(parsed.params), parsed.access_key_id, parsed.session_token)
                )
            return parsed

        def send_reply(handler: Any, status: int, reason: Any, headers: Any, body: bytes) -> None:
            found = {match.group(2).decode() for match in Spy.SECRET_ELEMENTS.finditer(body or b"")}
            if found:
                with spy.lock:
                    spy.secrets.update(found)
            original_send(handler, status, reason, headers, body)

        awsproxy_module.parse_aws_request = parse
        awsproxy_module.ProxyHandler.send_reply = send_reply

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()


class Aws:
    """moto behind the validating proxy, with the users, seeds and requests of one test."""

    def __init__(self, moto: Any, proxy: Any, spy: Spy) -> None:
        self.moto = moto
        self.proxy = proxy
        self.spy = spy
        self.url = proxy.url
        self.users: dict[str, User] = {}
        self.seeds: dict[str, str] = {}
        self.used_steps: dict[str, set[int]] = {}
        self.setup_secrets: set[str] = {EXAMPLE_SECRET_ACCESS_KEY}

    def client(self, service: str, access_key_id: str = EXAMPLE_ACCESS_KEY_ID,
               secret_access_key: str = EXAMPLE_SECRET_ACCESS_KEY, session_token: str | None = None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=NO_RETRIES,
        )

    def create_user(self, name: str, mfa_name: str | None = None) -> User:
        """Create an IAM user with an access key and an allow-all policy. With `mfa_name`,
        also create a virtual MFA device of that name, whose seed the proxy captures."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=ALLOW_ALL)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        serial = seed = None
        if mfa_name:
            serial, seed = self.create_mfa_device(mfa_name)
        user = User(name, key["AccessKeyId"], key["SecretAccessKey"], serial, seed)
        self.users[name] = user
        self.setup_secrets.add(user.secret_access_key)
        return user

    def create_mfa_device(self, name: str) -> tuple[str, str]:
        device = self.client("iam").create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
        # botocore decodes the base64 blob, leaving the base32 text as bytes.
        serial, seed = device["SerialNumber"], device["Base32StringSeed"].decode("ascii")
        self.seeds[serial] = seed
        return serial, seed

    def create_role(self, name: str) -> str:
        iam = self.client("iam")
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ANYONE)
        iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=ALLOW_ALL)
        return role_arn(name)

    def set_auth(self, enabled: bool) -> None:
        """Turn moto's SigV4 and IAM policy checks on or off. With them on, moto 5.2.5 accepts
        IAM user keys and assumed-role credentials, but rejects the credentials GetSessionToken
        returns (InvalidClientTokenId), so flows that sign with a session token need it off."""
        self.moto.set_auth(enabled)

    def code(self, serial: str) -> str:
        """Return a valid code the proxy has not seen used: the current step's, else the
        previous or next step's (the proxy accepts all three)."""
        seed = self.seeds.get(serial)
        if seed is None:
            return "000000"
        now = int(time.time() // TOTP_STEP_SECONDS)
        used = self.used_steps.setdefault(serial, set())
        for step in (now, now + 1, now - 1):
            if step not in used:
                used.add(step)
                return totp(seed, step)
        raise AssertionError(f"no unused code left for {serial} in the proxy's window")

    def requests(self, action: str | None = None) -> list[Request]:
        with self.spy.lock:
            return [request for request in self.spy.requests if action is None or request.action == action]

    def actions(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for request in self.requests():
            counts[request.action] = counts.get(request.action, 0) + 1
        return counts

    def clear_requests(self) -> None:
        self.spy.reset()

    def known_secrets(self) -> set[str]:
        with self.spy.lock:
            return self.setup_secrets | self.spy.secrets

    def caller_arn(self, credentials: dict[str, str]) -> str:
        sts = self.client(
            "sts",
            credentials["AWS_ACCESS_KEY_ID"],
            credentials["AWS_SECRET_ACCESS_KEY"],
            credentials.get("AWS_SESSION_TOKEN"),
        )
        return sts.get_caller_identity()["Arn"]


@dataclass(repr=False)
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    prompts: list[str]
    elapsed: float
    exports: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Assertion messages show reprs, and stdout and exports contain secrets, so they stay out.
        return f"Result(args={self.args!r}, returncode={self.returncode}, prompts={self.prompts!r})"

    def describe(self) -> str:
        """Describe the run for assertion messages: arguments, status and stderr (which the
        secret scan has already cleared), never stdout, which contains secrets."""
        return f"awsu {shlex.join(self.args)} exited {self.returncode}\n--- stderr ---\n{self.stderr}"


class Awsu:
    """Runs awsu for one test with a private HOME and a clean environment."""

    def __init__(self, binary: Path, home: Path, aws: Aws) -> None:
        self.binary = binary
        self.home = home
        self.aws = aws
        self.aws_dir = home / ".aws"
        self.aws_dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.aws_dir / "config"
        self.credentials_file = self.aws_dir / "credentials"
        self.cache_dir = home / ".awsu" / "sessions"
        self.results: list[Result] = []
        self.extra_secrets: set[str] = set()

    def write_files(self, credentials: str = "", config: str = "") -> None:
        self.credentials_file.write_text(credentials)
        self.config_file.write_text(config)

    def env(self, extra: dict[str, str] | None = None, endpoint: bool = True) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "USER": "tester",
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if endpoint:
            env["AWS_ENDPOINT_URL"] = self.aws.url
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        stdin_text: str | None = None,
        answer_prompts: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        command_prefix: list[str] | None = None,
    ) -> Result:
        """Run awsu and wait for it.

        By default each MFA prompt on stderr is answered with a valid code for the serial it
        names. With `stdin_text`, that text is the whole of stdin. With
        `answer_prompts=False`, stdin is closed at once, so any prompt meets end of input.
        The process runs in a new session, so it has no terminal and prompts go to stderr.
        """
        command = (command_prefix or []) + [str(self.binary), *args]
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else self.env(),
            cwd=self.home,
            start_new_session=True,
        )
        stdout = bytearray()
        stderr = bytearray()
        readers = [
            threading.Thread(target=_drain, args=(process.stdout, stdout), daemon=True),
            threading.Thread(target=_drain, args=(process.stderr, stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()

        prompts: list[str] = []
        assert process.stdin is not None
        if stdin_text is not None or not answer_prompts:
            _write_and_close(process.stdin, stdin_text or "")
        deadline = started + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise AssertionError(f"awsu {shlex.join(args)} did not finish within {timeout:.0f} s")
            if answer_prompts and stdin_text is None:
                for serial in _new_prompts(bytes(stderr), len(prompts)):
                    prompts.append(serial)
                    _write(process.stdin, self.aws.code(serial) + "\n")
            time.sleep(0.01)
        for reader in readers:
            reader.join(timeout=10)
        try:
            process.stdin.close()
        except OSError:
            pass

        stderr_text = stderr.decode("utf-8", "replace")
        all_prompts = _new_prompts(bytes(stderr), 0)
        result = Result(
            list(args), process.returncode, stdout.decode("utf-8", "replace"), stderr_text, all_prompts,
            time.monotonic() - started,
        )
        result.exports = parse_exports(result.stdout)
        self.results.append(result)
        self.check_no_secrets()
        return result

    def secrets(self) -> set[str]:
        """Every secret in play: keys made in moto, credentials moto returned, keys in the
        profile files, cached entries and exported values."""
        found = self.aws.known_secrets() | self.extra_secrets
        for path in (self.config_file, self.credentials_file):
            if path.exists():
                for match in re.finditer(r"(?m)^\s*aws_(?:secret_access_key|session_token)\s*=\s*(\S+)", path.read_text()):
                    found.add(match.group(1))
        if self.cache_dir.is_dir():
            for path in self.cache_dir.glob("*.json"):
                try:
                    entry = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                found.update(str(entry.get(name)) for name in ("SecretAccessKey", "SessionToken") if entry.get(name))
        for result in self.results:
            for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                if result.exports.get(name):
                    found.add(result.exports[name])
        return {secret for secret in found if len(secret) >= 8}

    def check_no_secrets(self) -> None:
        """Fail if the stderr of any run so far contains a secret. The message names the run,
        never the secret."""
        secrets = self.secrets()
        for index, result in enumerate(self.results):
            for secret in secrets:
                position = result.stderr.find(secret)
                if position >= 0:
                    raise AssertionError(
                        f"stderr of run {index + 1} (awsu {shlex.join(result.args)}) contains a secret "
                        f"of {len(secret)} characters at offset {position}"
                    )

    def cache_entries(self) -> list[Path]:
        if not self.cache_dir.is_dir():
            return []
        return sorted(self.cache_dir.glob("*.json"))

    def snapshot(self, root: Path | None = None) -> dict[str, tuple[int, int, float]]:
        """Map each path under `root` (default: HOME/.awsu) to its mode, size and mtime."""
        root = root or self.home / ".awsu"
        if not root.exists():
            return {}
        state = {}
        for path in [root, *root.rglob("*")]:
            info = path.lstat()
            state[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime)
        return state


def _drain(stream: Any, sink: bytearray) -> None:
    while True:
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        sink.extend(chunk)


def _write(stream: Any, text: str) -> None:
    try:
        stream.write(text.encode())
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass


def _write_and_close(stream: Any, text: str) -> None:
    _write(stream, text)
    try:
        stream.close()
    except OSError:
        pass


def _new_prompts(stderr: bytes, seen: int) -> list[str]:
    """Return the serials named by prompts after the first `seen` ones (complete prompts only)."""
    serials = re.findall(rb"Enter the one-time password for (\S+): ", stderr)
    return [serial.decode() for serial in serials[seen:]]


def parse_exports(stdout: str) -> dict[str, str]:
    """Evaluate awsu's export lines in sh and return the variables they set."""
    if "export " not in stdout:
        return {}
    script = stdout + "\nenv -0\n"
    completed = subprocess.run(
        ["sh", "-c", script], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True, timeout=10,
    )
    if completed.returncode != 0:
        return {}
    variables = {}
    for item in completed.stdout.split(b"\0"):
        if b"=" in item:
            name, _, value = item.partition(b"=")
            variables[name.decode()] = value.decode()
    return variables


def same_secret(first: str | None, second: str | None) -> bool:
    """Compare two secrets. Callers assert on the returned bool alone, so that a failure
    message never shows either value."""
    return first is not None and second is not None and hmac.compare_digest(first, second)


@dataclass
class Example:
    """The original README's example profiles, with keys of IAM users made in moto."""

    default: User
    foo: User
    serials: dict[str, str]

    def credentials_file(self) -> str:
        """All five profiles in the shared credentials file, as the README shows them."""
        return f"""\
[default]
aws_access_key_id     = {self.default.access_key_id}
aws_secret_access_key = {self.default.secret_access_key}

[foo]
aws_access_key_id     = {self.foo.access_key_id}
aws_secret_access_key = {self.foo.secret_access_key}
mfa_serial            = {self.serials["foo"]}

[bar]
mfa_serial            = {self.serials["bar"]}
role_arn              = arn:aws:iam::123456789012:role/foo-cross-account
source_profile        = default

[wee]
external_id           = {EXTERNAL_ID}
mfa_serial            = {self.serials["wee"]}
role_arn              = arn:aws:iam::121234567890:role/bar-cross-account
source_profile        = default

[gee]
role_arn              = arn:aws:iam::121234567890:role/wee-cross-account
source_profile        = foo
"""

    def split_files(self) -> tuple[str, str]:
        """The same profiles split: keys in the credentials file, the rest in the config file."""
        credentials = f"""\
[default]
aws_access_key_id     = {self.default.access_key_id}
aws_secret_access_key = {self.default.secret_access_key}

[foo]
aws_access_key_id     = {self.foo.access_key_id}
aws_secret_access_key = {self.foo.secret_access_key}
"""
        config = f"""\
[profile foo]
mfa_serial     = {self.serials["foo"]}

[profile bar]
mfa_serial     = {self.serials["bar"]}
role_arn       = arn:aws:iam::123456789012:role/foo-cross-account
source_profile = default

[profile wee]
external_id    = {EXTERNAL_ID}
mfa_serial     = {self.serials["wee"]}
role_arn       = arn:aws:iam::121234567890:role/bar-cross-account
source_profile = default

[profile gee]
role_arn       = arn:aws:iam::121234567890:role/wee-cross-account
source_profile = foo
"""
        return credentials, config


def make_example(aws: Aws) -> Example:
    """Create the users, MFA devices and roles behind the README's example."""
    default = aws.create_user("default-user", mfa_name="default")
    foo = aws.create_user("foo-user", mfa_name="foo")
    serials = {"default": default.serial, "foo": foo.serial}
    for name in ("bar", "wee"):
        serials[name], _ = aws.create_mfa_device(name)
    aws.create_role("foo-cross-account")
    aws.clear_requests()
    return Example(default, foo, serials)
