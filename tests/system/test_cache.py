"""The credential cache: reuse across runs, expiry, partial reuse, --no-cache, permissions."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from support import Aws, Awsu, Example, Result, make_example, role_arn, same_secret


def run_profile(awsu: Awsu, profile: str, *extra: str, **options) -> Result:
    return awsu.run("-g", "manual", "-v", "-p", profile, *extra, **options)


def setup_example(aws: Aws, awsu: Awsu) -> Example:
    example = make_example(aws)
    awsu.write_files(credentials=example.credentials_file())
    return example


def entries_by_kind(awsu: Awsu) -> dict[str, Path]:
    return {json.loads(path.read_text())["Kind"]: path for path in awsu.cache_entries()}


def set_expires(path: Path, seconds_from_now: int) -> None:
    entry = json.loads(path.read_text())
    entry["Expires"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))
    path.write_text(json.dumps(entry))
    path.chmod(0o600)


def test_cache_reused_across_runs(aws: Aws, awsu: Awsu) -> None:
    setup_example(aws, awsu)
    first = run_profile(awsu, "bar")
    assert first.returncode == 0, first.describe()
    aws.clear_requests()

    second = run_profile(awsu, "bar", answer_prompts=False)

    assert second.returncode == 0, second.describe()
    assert aws.actions() == {}
    assert second.prompts == []
    assert "cache hit" in second.stderr, second.describe()
    assert second.exports["AWS_ACCESS_KEY_ID"] == first.exports["AWS_ACCESS_KEY_ID"]
    same = same_secret(second.exports["AWS_SESSION_TOKEN"], first.exports["AWS_SESSION_TOKEN"])
    assert same, "the second run exported another session token than the first"


def test_cache_expired_by_grace(aws: Aws, awsu: Awsu) -> None:
    """A 15-minute token with a grace of 14m59s is stale a second later. The renewal needs a
    new code, so awsu waits for the next 30-second step rather than reuse the one it used."""
    example = setup_example(aws, awsu)
    first = run_profile(awsu, "foo", "-d", "15m", "-r", "14m59s")
    assert first.returncode == 0, first.describe()
    aws.clear_requests()
    time.sleep(1.5)

    second = run_profile(awsu, "foo", "-d", "15m", "-r", "14m59s")

    assert second.returncode == 0, second.describe()
    assert aws.actions() == {"GetSessionToken": 1}
    assert second.prompts == [example.serials["foo"]]
    assert "within the grace period" in second.stderr, second.describe()
    differs = not same_secret(second.exports["AWS_SECRET_ACCESS_KEY"], first.exports["AWS_SECRET_ACCESS_KEY"]) or (
        second.exports["AWSU_EXPIRES"] != first.exports["AWSU_EXPIRES"]
    )
    assert differs, "the renewed credentials equal the stale ones"


def test_expired_role_reassumed_without_code(aws: Aws, awsu: Awsu) -> None:
    setup_example(aws, awsu)
    first = run_profile(awsu, "bar")
    assert first.returncode == 0, first.describe()
    set_expires(entries_by_kind(awsu)["role"], -60)
    aws.clear_requests()

    second = run_profile(awsu, "bar", answer_prompts=False)

    assert second.returncode == 0, second.describe()
    assert aws.actions() == {"AssumeRole": 1}
    assert second.prompts == []
    assert aws.requests("AssumeRole")[0].params["RoleArn"] == role_arn("foo-cross-account")
    assert "SerialNumber" not in aws.requests("AssumeRole")[0].params
    assert json.loads(entries_by_kind(awsu)["role"].read_text())["Expires"] == second.exports["AWSU_EXPIRES"]


def test_no_cache_ignores_entries(aws: Aws, awsu: Awsu) -> None:
    """A role chain without MFA: a cached entry exists, yet --no-cache calls STS and writes nothing."""
    user = aws.create_user("ops")
    aws.create_role("plain")
    awsu.write_files(
        credentials=(
            f"[ops]\naws_access_key_id = {user.access_key_id}\naws_secret_access_key = {user.secret_access_key}\n"
            "[plain]\nrole_arn = arn:aws:iam::123456789012:role/plain\nsource_profile = ops\n"
        )
    )
    cached = run_profile(awsu, "plain", answer_prompts=False)
    assert cached.returncode == 0, cached.describe()
    assert len(awsu.cache_entries()) == 1
    before = awsu.snapshot()
    aws.clear_requests()
    time.sleep(1.1)

    result = run_profile(awsu, "plain", "--no-cache", answer_prompts=False)

    assert result.returncode == 0, result.describe()
    assert aws.actions() == {"AssumeRole": 1}
    assert result.exports["AWS_ACCESS_KEY_ID"] != cached.exports["AWS_ACCESS_KEY_ID"]
    assert awsu.snapshot() == before


def test_no_cache_writes_no_credentials(aws: Aws, awsu: Awsu) -> None:
    """With MFA, --no-cache writes no credentials; only the record of the used code remains.

    The record (a .step file and its .lock) keeps a later run from sending the
    same one-time password again, which AWS would reject.
    """
    setup_example(aws, awsu)

    result = run_profile(awsu, "bar", "--no-cache")

    assert result.returncode == 0, result.describe()
    assert aws.actions() == {"GetSessionToken": 1, "AssumeRole": 1}
    leftovers = sorted(awsu.snapshot())
    credentials = [path for path in leftovers if path.endswith(".json") or path.endswith(".tmp")]
    assert credentials == [], f"--no-cache left credentials under ~/.awsu: {leftovers}"
    steps = [path for path in leftovers if path.endswith(".step")]
    assert len(steps) == 1, leftovers
    for path in leftovers:
        if path.startswith("sessions/"):
            assert path.endswith((".step", ".lock")), leftovers


def test_cache_permissions_with_umask_000(aws: Aws, awsu: Awsu) -> None:
    setup_example(aws, awsu)

    result = run_profile(awsu, "bar", command_prefix=["sh", "-c", 'umask 000 && exec "$0" "$@"'])

    assert result.returncode == 0, result.describe()
    for directory in (awsu.home / ".awsu", awsu.cache_dir):
        mode = stat.S_IMODE(directory.stat().st_mode)
        assert mode == 0o700, f"{directory} has mode {mode:o}"
    files = [path for path in awsu.cache_dir.iterdir()]
    assert len([path for path in files if path.suffix == ".json"]) == 2
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name} has mode {mode:o}"


@pytest.mark.parametrize("value", ["soon", "5"])
def test_invalid_lock_timeout_rejected(aws: Aws, awsu: Awsu, value: str) -> None:
    setup_example(aws, awsu)

    result = run_profile(awsu, "bar", env=awsu.env({"AWSU_LOCK_TIMEOUT": value}))

    assert result.returncode == 1, result.describe()
    assert f"AWSU_LOCK_TIMEOUT: invalid duration '{value}'" in result.stderr
    assert "Enter the one-time password" not in result.stderr
    assert aws.actions() == {}
