"""The original README's table: each example profile gives the credentials it promises."""

from __future__ import annotations

import re

import pytest

from support import Aws, Awsu, Example, Result, make_example, role_arn, same_secret

SESSION_KEY_PATTERN = re.compile(r"^(ASIA|AKIA)[A-Z0-9]{16}$")


def run_profile(awsu: Awsu, profile: str, *extra: str, **options) -> Result:
    return awsu.run("-g", "manual", "-v", "-p", profile, *extra, **options)


def assert_session_token(aws: Aws, result: Result, signer: str, serial: str) -> None:
    """Check one GetSessionToken call signed by `signer` with `serial` and its exported result."""
    calls = aws.requests("GetSessionToken")
    assert len(calls) == 1, result.describe()
    assert calls[0].access_key_id == signer
    assert calls[0].params.get("SerialNumber") == serial
    assert re.fullmatch(r"\d{6}", calls[0].params.get("TokenCode", ""))
    assert result.prompts == [serial]
    token = result.exports.get("AWS_SESSION_TOKEN")
    assert token, result.describe()
    token_from_sts = token in aws.known_secrets()
    assert token_from_sts, "the exported session token is not one that STS returned"
    assert result.exports.get("AWSU_EXPIRES"), result.describe()


def assert_role(aws: Aws, result: Result, arn: str, session_name: str = "awsu-tester") -> None:
    calls = aws.requests("AssumeRole")
    assert len(calls) == 1, result.describe()
    assert calls[0].params["RoleArn"] == arn
    assert calls[0].params["RoleSessionName"] == session_name
    assert calls[0].session_token, "AssumeRole was not signed with the session token"
    assert "SerialNumber" not in calls[0].params, "the MFA code was sent twice"
    account, name = arn.split(":")[4], arn.rsplit("/", 1)[1]
    assert aws.caller_arn(result.exports) == f"arn:aws:sts::{account}:assumed-role/{name}/{session_name}"


@pytest.fixture
def example(aws: Aws, awsu: Awsu) -> Example:
    setup = make_example(aws)
    awsu.write_files(credentials=setup.credentials_file())
    return setup


def test_default_exports_long_term_keys(aws: Aws, awsu: Awsu, example: Example) -> None:
    aws.set_auth(True)

    result = run_profile(awsu, "default", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    assert result.exports["AWS_ACCESS_KEY_ID"] == example.default.access_key_id
    secret_unchanged = same_secret(result.exports["AWS_SECRET_ACCESS_KEY"], example.default.secret_access_key)
    assert secret_unchanged, "the exported secret key is not the default profile's"
    assert "AWS_SESSION_TOKEN" not in result.exports
    assert "AWSU_EXPIRES" not in result.exports
    assert result.exports["AWSU_PROFILE"] == "default"
    assert aws.actions() == {}
    assert result.prompts == []
    assert awsu.cache_entries() == []


def test_default_with_mfa_flag(aws: Aws, awsu: Awsu, example: Example) -> None:
    aws.set_auth(True)

    result = run_profile(awsu, "default", "--mfa", example.serials["default"])

    assert result.returncode == 0, result.describe()
    assert_session_token(aws, result, example.default.access_key_id, example.serials["default"])
    assert aws.actions() == {"GetSessionToken": 1}
    assert len(awsu.cache_entries()) == 1


def test_foo_session_token(aws: Aws, awsu: Awsu, example: Example) -> None:
    aws.set_auth(True)

    result = run_profile(awsu, "foo")

    assert result.returncode == 0, result.describe()
    assert_session_token(aws, result, example.foo.access_key_id, example.serials["foo"])
    assert aws.actions() == {"GetSessionToken": 1}
    assert result.exports["AWSU_PROFILE"] == "foo"
    assert len(awsu.cache_entries()) == 1


def test_bar_session_then_role(aws: Aws, awsu: Awsu, example: Example) -> None:
    result = run_profile(awsu, "bar")

    assert result.returncode == 0, result.describe()
    assert_session_token_call_only(aws, result, example.default.access_key_id, example.serials["bar"])
    assert_role(aws, result, role_arn("foo-cross-account"))
    assert "ExternalId" not in aws.requests("AssumeRole")[0].params
    assert aws.actions() == {"GetSessionToken": 1, "AssumeRole": 1, "GetCallerIdentity": 1}
    assert len(awsu.cache_entries()) == 2


def test_wee_role_with_external_id(aws: Aws, awsu: Awsu, example: Example) -> None:
    result = run_profile(awsu, "wee")

    assert result.returncode == 0, result.describe()
    assert_session_token_call_only(aws, result, example.default.access_key_id, example.serials["wee"])
    assert_role(aws, result, role_arn("bar-cross-account", "121234567890"))
    assert aws.requests("AssumeRole")[0].params.get("ExternalId") == "1a03197b-3cb5-491b-bc06-84795afc95ef"
    assert len(awsu.cache_entries()) == 2


def test_gee_mfa_from_foo(aws: Aws, awsu: Awsu, example: Example) -> None:
    result = run_profile(awsu, "gee")

    assert result.returncode == 0, result.describe()
    assert_session_token_call_only(aws, result, example.foo.access_key_id, example.serials["foo"])
    assert_role(aws, result, role_arn("wee-cross-account", "121234567890"))
    assert len(awsu.cache_entries()) == 2


def assert_session_token_call_only(aws: Aws, result: Result, signer: str, serial: str) -> None:
    """Check the GetSessionToken call at the start of a role chain (its token is not exported)."""
    calls = aws.requests("GetSessionToken")
    assert len(calls) == 1, result.describe()
    assert calls[0].access_key_id == signer
    assert calls[0].params.get("SerialNumber") == serial
    assert result.prompts == [serial]


def outcome(aws: Aws, result: Result, awsu: Awsu) -> dict:
    """Summarise a run by what is comparable between two homes: calls, variables, cache."""
    calls = [
        (
            request.action,
            request.access_key_id if not request.session_token else "session",
            tuple(sorted((name, value) for name, value in request.params.items() if name != "TokenCode")),
        )
        for request in aws.requests()
    ]
    return {
        "returncode": result.returncode,
        "calls": calls,
        "variables": sorted(name for name in result.exports if name.startswith(("AWS_", "AWSU_"))),
        "prompts": result.prompts,
        "cache_entries": len(awsu.cache_entries()),
    }


@pytest.mark.parametrize("profile", ["default", "foo", "bar", "wee", "gee"])
def test_split_layout_same_result(aws: Aws, awsu: Awsu, example: Example, tmp_path, profile: str) -> None:
    split = Awsu(awsu.binary, tmp_path / "split-home", aws)
    credentials, config = example.split_files()
    split.write_files(credentials=credentials, config=config)

    single_result = run_profile(awsu, profile)
    single = outcome(aws, single_result, awsu)
    aws.clear_requests()
    split_result = run_profile(split, profile)
    split_outcome = outcome(aws, split_result, split)
    split.check_no_secrets()

    assert single_result.returncode == 0, single_result.describe()
    assert split_outcome == single, split_result.describe()


def test_bare_section_in_config_ignored(aws: Aws, awsu: Awsu, example: Example) -> None:
    credentials, _ = example.split_files()
    config = (
        "[profile foo]\n"
        f"mfa_serial = {example.serials['foo']}\n"
        "\n"
        "[bar]\n"
        f"mfa_serial = {example.serials['bar']}\n"
        "role_arn = arn:aws:iam::123456789012:role/foo-cross-account\n"
        "source_profile = default\n"
    )
    awsu.write_files(credentials=credentials, config=config)

    result = run_profile(awsu, "bar", answer_prompts=False)

    assert result.returncode != 0, result.describe()
    assert f"{awsu.config_file}:4" in result.stderr, result.describe()
    assert "warn" in result.stderr.lower(), result.describe()
    assert "profile 'bar' not found" in result.stderr, result.describe()
    assert result.prompts == []
    assert aws.actions() == {}

    result = run_profile(awsu, "default", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    assert f"{awsu.config_file}:4" in result.stderr, result.describe()
