"""Durations and grace periods outside what STS accepts are rejected before any prompt or call."""

from __future__ import annotations

import pytest

from support import Aws, Awsu, make_example


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["-d", "14m59s"], "invalid duration 14m59s"),
        (["-d", "36h1s"], "invalid duration 36h1s"),
        (["-d", "1h", "-r", "1h"], "invalid grace 1h"),
        (["-d", "1h", "-r", "2h"], "invalid grace 2h"),
    ],
    ids=["below-minimum", "above-maximum", "grace-equal", "grace-longer"],
)
def test_duration_flags_rejected(aws: Aws, awsu: Awsu, flags: list[str], fragment: str) -> None:
    example = make_example(aws)
    awsu.write_files(credentials=example.credentials_file())

    result = awsu.run("-g", "manual", "-v", "-p", "bar", *flags, answer_prompts=False)

    assert result.returncode != 0, result.describe()
    assert fragment in result.stderr, result.describe()
    assert result.prompts == [], result.describe()
    assert aws.actions() == {}
    assert awsu.cache_entries() == []


def test_role_duration_seconds_rejected(aws: Aws, awsu: Awsu) -> None:
    """A role assumed with long-term keys is not capped, so 50000 s exceeds AssumeRole's 12 h."""
    example = make_example(aws)
    awsu.write_files(
        credentials=example.credentials_file()
        + "\n[long]\nrole_arn = arn:aws:iam::123456789012:role/long\nsource_profile = default\n"
        + "duration_seconds = 50000\n"
    )

    result = awsu.run("-g", "manual", "-v", "-p", "long", answer_prompts=False)

    assert result.returncode != 0, result.describe()
    assert "invalid duration" in result.stderr, result.describe()
    assert "'long'" in result.stderr, result.describe()
    assert result.prompts == [], result.describe()
    assert aws.actions() == {}
