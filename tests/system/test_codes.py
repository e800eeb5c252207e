"""Manual one-time passwords and failures of the STS call."""

from __future__ import annotations

import socket
import time

import pytest

from support import Aws, Awsu, Example, make_example, totp


@pytest.fixture
def example(aws: Aws, awsu: Awsu) -> Example:
    setup = make_example(aws)
    awsu.write_files(credentials=setup.credentials_file())
    return setup


def wrong_code(seed: str) -> str:
    """Return a well-formed code that matches none of the steps the proxy accepts now."""
    now = int(time.time() // 30)
    valid = {totp(seed, step) for step in range(now - 2, now + 3)}
    return next(code for code in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if code not in valid)


@pytest.mark.parametrize("text", ["12345\n", "1234567\n", "12a456\n", " \n"], ids=["short", "long", "letter", "blank"])
def test_malformed_code_rejected(aws: Aws, awsu: Awsu, example: Example, text: str) -> None:
    result = awsu.run("-g", "manual", "-v", "-p", "bar", stdin_text=text)

    assert result.returncode != 0, result.describe()
    assert "invalid one-time password: expected 6 digits" in result.stderr, result.describe()
    assert aws.actions() == {}
    assert awsu.cache_entries() == []


def test_code_with_space_accepted(aws: Aws, awsu: Awsu, example: Example) -> None:
    code = aws.code(example.serials["foo"])

    result = awsu.run("-g", "manual", "-p", "foo", stdin_text=f"{code[:3]} {code[3:]}\n")

    assert result.returncode == 0, result.describe()
    assert aws.actions() == {"GetSessionToken": 1}
    assert [request.params.get("TokenCode") for request in aws.requests("GetSessionToken")] == [code]


def test_code_end_of_input(aws: Aws, awsu: Awsu, example: Example) -> None:
    result = awsu.run("-g", "manual", "-v", "-p", "foo", answer_prompts=False)

    assert result.returncode != 0, result.describe()
    assert "end of input" in result.stderr, result.describe()
    assert example.serials["foo"] in result.stderr, result.describe()
    assert aws.actions() == {}


def test_wrong_code_one_error(aws: Aws, awsu: Awsu, example: Example) -> None:
    seed = aws.seeds[example.serials["bar"]]

    result = awsu.run("-g", "manual", "-p", "bar", stdin_text=wrong_code(seed) + "\n")

    assert result.returncode != 0, result.describe()
    # The prompt's line ends after the piped answer, so the error starts a line of its own.
    messages = [line for line in result.stderr.splitlines() if line.startswith("awsu:")]
    assert len(messages) == 1, result.describe()
    assert "rejected by AWS" in messages[0], result.describe()
    assert example.serials["bar"] in messages[0], result.describe()
    assert aws.actions() == {"GetSessionToken": 1}
    assert awsu.cache_entries() == []


def test_mistyped_code_needs_no_wait(aws: Aws, awsu: Awsu, example: Example) -> None:
    """A typed code that AWS rejected was not used, so the next run may use this step."""
    seed = aws.seeds[example.serials["bar"]]
    rejected = awsu.run("-g", "manual", "-p", "bar", stdin_text=wrong_code(seed) + "\n")
    assert rejected.returncode != 0, rejected.describe()

    result = awsu.run("-g", "manual", "-p", "bar")

    assert result.returncode == 0, result.describe()
    assert "already used" not in result.stderr, result.describe()


def test_malformed_serial_rejected_early(aws: Aws, awsu: Awsu, example: Example) -> None:
    result = awsu.run("-g", "manual", "-p", "default", "--mfa", "notanarn", answer_prompts=False)

    assert result.returncode != 0, result.describe()
    assert "invalid MFA serial 'notanarn'" in result.stderr, result.describe()
    assert "Enter the one-time password" not in result.stderr, result.describe()
    assert aws.actions() == {}


def closed_endpoint() -> str:
    """Return a URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_sts_endpoint_overrides_general_one(aws: Aws, awsu: Awsu, example: Example) -> None:
    env = awsu.env({"AWS_ENDPOINT_URL": closed_endpoint(), "AWS_ENDPOINT_URL_STS": aws.proxy.url})

    result = awsu.run("-g", "manual", "-p", "bar", env=env)

    assert result.returncode == 0, result.describe()
    assert aws.actions() == {"GetSessionToken": 1, "AssumeRole": 1}


def test_services_section_endpoint(aws: Aws, awsu: Awsu, example: Example) -> None:
    awsu.config_file.write_text(
        f"[profile bar]\nendpoint_url = {closed_endpoint()}\nservices = local\n\n"
        f"[services local]\nsts =\n  endpoint_url = {aws.proxy.url}\n"
    )

    result = awsu.run("-g", "manual", "-p", "bar", env=awsu.env(endpoint=False))

    assert result.returncode == 0, result.describe()
    assert aws.actions() == {"GetSessionToken": 1, "AssumeRole": 1}


def test_unreachable_services_endpoint_named(aws: Aws, awsu: Awsu, example: Example) -> None:
    endpoint = closed_endpoint()
    awsu.config_file.write_text(f"[profile foo]\nservices = local\n\n[services local]\nsts =\n  endpoint_url = {endpoint}\n")

    result = awsu.run("-g", "manual", "-p", "foo", env=awsu.env(endpoint=False))

    assert result.returncode != 0, result.describe()
    assert f"could not reach STS at {endpoint}" in result.stderr, result.describe()
    assert "the sts endpoint_url in [services local] of the config file, which sets this endpoint" in result.stderr
    assert aws.actions() == {}


def test_missing_services_section_warns(aws: Aws, awsu: Awsu, example: Example) -> None:
    awsu.config_file.write_text(f"[profile bar]\nendpoint_url = {aws.proxy.url}\nservices = missing\n")

    result = awsu.run("-g", "manual", "-p", "bar", env=awsu.env(endpoint=False))

    assert result.returncode == 0, result.describe()
    assert "names the services section 'missing', which is not in the config file" in result.stderr
    assert aws.actions() == {"GetSessionToken": 1, "AssumeRole": 1}


def test_unreachable_endpoint(aws: Aws, awsu: Awsu, example: Example) -> None:
    endpoint = closed_endpoint()

    result = awsu.run("-g", "manual", "-v", "-p", "foo", env=awsu.env({"AWS_ENDPOINT_URL": endpoint}))

    assert result.returncode != 0, result.describe()
    assert result.elapsed < 12, f"took {result.elapsed:.1f} s\n{result.describe()}"
    assert f"could not reach STS at {endpoint}" in result.stderr, result.describe()
    assert "HTTPS_PROXY, and AWS_ENDPOINT_URL, which sets this endpoint" in result.stderr, result.describe()
    assert awsu.cache_entries() == []
