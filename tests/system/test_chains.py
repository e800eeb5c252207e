"""Profile chains beyond the README's table: several roles, odd source profiles, bad configs."""

from __future__ import annotations

import pytest

from support import Aws, Awsu, Result, make_example, role_arn

OPS_KEYS = """\
[ops]
aws_access_key_id     = {key_id}
aws_secret_access_key = {secret}
"""


def run_profile(awsu: Awsu, profile: str, *extra: str, **options) -> Result:
    return awsu.run("-g", "manual", "-v", "-p", profile, *extra, **options)


def ops_credentials(aws: Aws, mfa: bool = False) -> tuple[str, str | None]:
    """Create IAM user 'ops' and return its credentials-file section and MFA serial."""
    user = aws.create_user("ops", mfa_name="ops" if mfa else None)
    return OPS_KEYS.format(key_id=user.access_key_id, secret=user.secret_access_key), user.serial


def assert_rejected_before_calls(aws: Aws, result: Result, *fragments: str) -> None:
    assert result.returncode != 0, result.describe()
    for fragment in fragments:
        assert fragment in result.stderr, result.describe()
    assert result.prompts == [], result.describe()
    assert aws.actions() == {}, result.describe()


def test_three_role_hops(aws: Aws, awsu: Awsu) -> None:
    keys, _ = ops_credentials(aws)
    for name in ("hop1", "hop2", "hop3"):
        aws.create_role(name)
    awsu.write_files(
        credentials=keys,
        config=(
            "[profile hop1]\nrole_arn = arn:aws:iam::123456789012:role/hop1\nsource_profile = ops\n"
            "[profile hop2]\nrole_arn = arn:aws:iam::123456789012:role/hop2\nsource_profile = hop1\n"
            "[profile hop3]\nrole_arn = arn:aws:iam::123456789012:role/hop3\nsource_profile = hop2\n"
        ),
    )
    aws.clear_requests()
    aws.set_auth(True)

    result = run_profile(awsu, "hop3", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    calls = aws.requests("AssumeRole")
    assert [call.params["RoleArn"] for call in calls] == [role_arn("hop1"), role_arn("hop2"), role_arn("hop3")]
    assert calls[0].access_key_id == aws.users["ops"].access_key_id
    assert [call.session_token for call in calls] == [False, True, True]
    assert calls[1].access_key_id != calls[2].access_key_id
    assert aws.caller_arn(result.exports) == "arn:aws:sts::123456789012:assumed-role/hop3/awsu-tester"
    assert len(awsu.cache_entries()) == 3


def test_self_source_profile(aws: Aws, awsu: Awsu) -> None:
    user = aws.create_user("me")
    aws.create_role("self")
    awsu.write_files(
        credentials=(
            "[me]\n"
            f"aws_access_key_id = {user.access_key_id}\n"
            f"aws_secret_access_key = {user.secret_access_key}\n"
            "role_arn = arn:aws:iam::123456789012:role/self\n"
            "source_profile = me\n"
        )
    )
    aws.clear_requests()
    aws.set_auth(True)

    result = run_profile(awsu, "me", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    calls = aws.requests("AssumeRole")
    assert len(calls) == 1
    assert calls[0].access_key_id == user.access_key_id
    assert not calls[0].session_token
    assert aws.caller_arn(result.exports) == "arn:aws:sts::123456789012:assumed-role/self/awsu-tester"


def test_source_profile_loop(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        config=(
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n"
            "mfa_serial = arn:aws:iam::123456789012:mfa/a\n"
            "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = c\n"
            "[profile c]\nrole_arn = arn:aws:iam::123456789012:role/c\nsource_profile = a\n"
        )
    )

    result = run_profile(awsu, "a", answer_prompts=False)

    assert_rejected_before_calls(aws, result, "a -> b -> c -> a")


def test_missing_source_profile(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        config=(
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = nowhere\n"
            "mfa_serial = arn:aws:iam::123456789012:mfa/a\n"
        )
    )

    result = run_profile(awsu, "a", answer_prompts=False)

    assert_rejected_before_calls(aws, result, "'a'", "'nowhere'")


def test_half_key_pair(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        credentials=(
            "[half]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
            "mfa_serial = arn:aws:iam::123456789012:mfa/half\n"
        )
    )

    result = run_profile(awsu, "half", answer_prompts=False)

    assert_rejected_before_calls(aws, result, "'half'", "aws_secret_access_key")


def test_role_session_name_used(aws: Aws, awsu: Awsu) -> None:
    keys, _ = ops_credentials(aws)
    aws.create_role("named")
    awsu.write_files(
        credentials=keys,
        config=(
            "[profile named]\nrole_arn = arn:aws:iam::123456789012:role/named\nsource_profile = ops\n"
            "role_session_name = jane.doe@example.com\n"
        ),
    )
    aws.set_auth(True)

    result = run_profile(awsu, "named", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    assert aws.requests("AssumeRole")[0].params["RoleSessionName"] == "jane.doe@example.com"
    assert aws.caller_arn(result.exports) == (
        "arn:aws:sts::123456789012:assumed-role/named/jane.doe@example.com"
    )


@pytest.mark.parametrize("name", ["has space", "x", "a/b", "n" * 65])
def test_invalid_role_session_name(aws: Aws, awsu: Awsu, name: str) -> None:
    keys, serial = ops_credentials(aws, mfa=True)
    awsu.write_files(
        credentials=keys,
        config=(
            "[profile named]\nrole_arn = arn:aws:iam::123456789012:role/named\nsource_profile = ops\n"
            f"mfa_serial = {serial}\nrole_session_name = {name}\n"
        ),
    )
    aws.clear_requests()

    result = run_profile(awsu, "named", answer_prompts=False)

    assert_rejected_before_calls(aws, result, "role_session_name", f"'{name}'", "'named'")


def test_chained_role_capped_at_hour(aws: Aws, awsu: Awsu) -> None:
    example = make_example(aws)
    awsu.write_files(credentials=example.credentials_file())

    result = run_profile(awsu, "bar", "-d", "2h")

    assert result.returncode == 0, result.describe()
    assert aws.requests("GetSessionToken")[0].params["DurationSeconds"] == "7200"
    role_call = aws.requests("AssumeRole")[0]
    assert role_call.params["DurationSeconds"] == "3600"
    assert "asking for the role of profile 'bar' for 1h instead of 2h" in result.stderr, result.describe()
    assert [request.action for request in aws.requests() if request.action != "GetCallerIdentity"] == [
        "GetSessionToken",
        "AssumeRole",
    ]


def test_temporary_base_skips_session_token(aws: Aws, awsu: Awsu) -> None:
    """A base profile with aws_session_token goes straight to AssumeRole, with the MFA code."""
    user = aws.create_user("ops", mfa_name="ops")
    aws.create_role("base")
    aws.create_role("target")
    sts = aws.client("sts", user.access_key_id, user.secret_access_key)
    base = sts.assume_role(RoleArn=role_arn("base"), RoleSessionName="base")["Credentials"]
    awsu.write_files(
        credentials=(
            "[temp]\n"
            f"aws_access_key_id = {base['AccessKeyId']}\n"
            f"aws_secret_access_key = {base['SecretAccessKey']}\n"
            f"aws_session_token = {base['SessionToken']}\n"
        ),
        config=(
            "[profile target]\nrole_arn = arn:aws:iam::123456789012:role/target\nsource_profile = temp\n"
            f"mfa_serial = {user.serial}\n"
        ),
    )
    aws.clear_requests()
    aws.set_auth(True)

    result = run_profile(awsu, "target")

    assert result.returncode == 0, result.describe()
    assert "GetSessionToken" not in aws.actions()
    calls = aws.requests("AssumeRole")
    assert len(calls) == 1
    assert calls[0].access_key_id == base["AccessKeyId"]
    assert calls[0].session_token
    assert calls[0].params.get("SerialNumber") == user.serial
    assert len(calls[0].params.get("TokenCode", "")) == 6
    assert result.prompts == [user.serial]
    assert aws.caller_arn(result.exports) == "arn:aws:sts::123456789012:assumed-role/target/awsu-tester"
