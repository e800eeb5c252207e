"""Handing credentials over: export lines for eval, and exec of a program."""

from __future__ import annotations

import subprocess

from support import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET_ACCESS_KEY, Aws, Awsu, make_example, same_secret

ODD_SECRET = EXAMPLE_SECRET_ACCESS_KEY + "'\"$(touch pwned)`touch pwned2` \\;x&y|z $HOME"
ODD_PROFILE = "team a/b.c%d@e:f+g"


def env_of(stdout: bytes) -> dict[str, str]:
    variables = {}
    for item in stdout.split(b"\0"):
        if b"=" in item:
            name, _, value = item.partition(b"=")
            variables[name.decode()] = value.decode()
    return variables


def test_export_eval_session_token(aws: Aws, awsu: Awsu) -> None:
    example = make_example(aws)
    awsu.write_files(credentials=example.credentials_file())

    result = awsu.run("-g", "manual", "-v", "-p", "foo")

    assert result.returncode == 0, result.describe()
    exported = result.exports
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"):
        assert exported.get(name), f"{name} not set after eval"
    assert exported["AWSU_EXPIRES"] == exported["AWS_CREDENTIAL_EXPIRATION"]
    assert exported["AWSU_PROFILE"] == "foo"
    lines = result.stdout.splitlines()
    assert all(line.startswith(("export ", "unset ")) for line in lines), result.describe()
    assert lines[-1] == "unset AWS_SECURITY_TOKEN"


def test_export_quotes_odd_values(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        credentials=(
            f"[{ODD_PROFILE}]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\naws_secret_access_key = {ODD_SECRET}\n"
        )
    )

    result = awsu.run("-g", "manual", "-v", "-p", ODD_PROFILE, answer_prompts=False)

    assert result.returncode == 0, result.describe()
    assert result.exports["AWS_ACCESS_KEY_ID"] == EXAMPLE_ACCESS_KEY_ID
    same = same_secret(result.exports["AWS_SECRET_ACCESS_KEY"], ODD_SECRET)
    assert same, "the odd secret did not survive eval unchanged"
    assert result.exports["AWSU_PROFILE"] == ODD_PROFILE
    assert not (awsu.home / "pwned").exists()
    assert not (awsu.home / "pwned2").exists()


def test_export_unsets_stale_tokens(aws: Aws, awsu: Awsu) -> None:
    """Long-term keys come with unset lines, so a token left from an earlier eval is gone."""
    awsu.write_files(
        credentials=(
            f"[default]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
        )
    )

    result = awsu.run("-g", "manual", "-v", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    unset_lines = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("unset ")]
    assert unset_lines == [["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWSU_EXPIRES"]]
    stale = {
        "AWS_SESSION_TOKEN": "stale-token",
        "AWS_SECURITY_TOKEN": "stale-token",
        "AWS_CREDENTIAL_EXPIRATION": "2000-01-01T00:00:00Z",
        "AWSU_EXPIRES": "2000-01-01T00:00:00Z",
    }
    completed = subprocess.run(
        ["sh", "-c", result.stdout + "\nenv -0\n"], env={"PATH": "/usr/bin:/bin", **stale},
        capture_output=True, timeout=10, check=True,
    )
    after = env_of(completed.stdout)
    for name in stale:
        assert name not in after, f"{name} is still set after eval"
    assert after["AWS_ACCESS_KEY_ID"] == EXAMPLE_ACCESS_KEY_ID


def test_exec_child_environment(aws: Aws, awsu: Awsu) -> None:
    example = make_example(aws)
    awsu.write_files(credentials=example.credentials_file())
    env = awsu.env(
        {
            "AWS_PROFILE": "foo",
            "AWS_DEFAULT_PROFILE": "default",
            "AWS_SESSION_TOKEN": "stale-token",
            "AWS_SECURITY_TOKEN": "stale-token",
            "UNRELATED": "kept",
        }
    )

    result = awsu.run("-g", "manual", "-v", "--", "env", "-0", env=env)

    assert result.returncode == 0, result.describe()
    child = env_of(result.stdout.encode())
    assert "AWS_PROFILE" not in child
    assert "AWS_DEFAULT_PROFILE" not in child
    assert "AWS_SECURITY_TOKEN" not in child
    assert child["AWSU_PROFILE"] == "foo"
    assert child["UNRELATED"] == "kept"
    assert child["AWS_ACCESS_KEY_ID"] != example.foo.access_key_id
    fresh = child["AWS_SESSION_TOKEN"] in aws.known_secrets()
    assert fresh, "the child did not get the session token STS returned"
    assert aws.actions() == {"GetSessionToken": 1}
    assert result.prompts == [example.serials["foo"]]


def test_exec_arguments_verbatim(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        credentials=(
            f"[default]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
        )
    )
    arguments = ["-p", "foo", "--", "--mfa", "a b", "", "$HOME", "-v"]

    result = awsu.run("-g", "manual", "--", "printf", "%s\\0", *arguments, answer_prompts=False)

    assert result.returncode == 0, result.describe()
    assert result.stdout.split("\0")[:-1] == arguments


def test_exec_exit_status(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        credentials=(
            f"[default]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
        )
    )

    result = awsu.run("-g", "manual", "--", "sh", "-c", "exit 42", answer_prompts=False)

    assert result.returncode == 42, result.describe()


def test_exec_missing_program(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        credentials=(
            f"[default]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
        )
    )

    for program in ("awsu-test-no-such-program", str(awsu.home / "missing")):
        result = awsu.run("-g", "manual", "--", program, answer_prompts=False)

        assert result.returncode == 127, result.describe()
        assert program in result.stderr, result.describe()


def test_exec_not_executable(aws: Aws, awsu: Awsu) -> None:
    awsu.write_files(
        credentials=(
            f"[default]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
        )
    )
    script = awsu.home / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)

    result = awsu.run("-g", "manual", "--", str(script), answer_prompts=False)

    assert result.returncode == 126, result.describe()
    assert str(script) in result.stderr, result.describe()
