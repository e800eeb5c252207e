"""Fixtures of the end-to-end tests: the awsu binary, moto behind the validating proxy, and a
runner with a private HOME for each test."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from harness import awsproxy  # noqa: E402
from harness.moto_harness import MotoServer  # noqa: E402

from support import Aws, Awsu, Spy  # noqa: E402


@pytest.fixture(scope="session")
def awsu_bin() -> Path:
    """The awsu binary: AWSU_BIN, else target/debug/awsu (build it first with `cargo build`)."""
    path = Path(os.environ.get("AWSU_BIN") or REPO_ROOT / "target" / "debug" / "awsu")
    if not os.access(path, os.X_OK):
        pytest.fail(f"awsu binary not found at {path}: run `cargo build` or set AWSU_BIN")
    return path


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with MotoServer(log_path=log_path) as server:
        yield server


@pytest.fixture(scope="session")
def spy() -> Spy:
    recorder = Spy()
    recorder.install(awsproxy)
    return recorder


@pytest.fixture(scope="session")
def proxy_server(moto_server: MotoServer, spy: Spy) -> Iterator[awsproxy.AwsProxy]:
    with awsproxy.start_proxy(moto_server.url) as proxy:
        yield proxy


@pytest.fixture
def aws(moto_server: MotoServer, proxy_server: awsproxy.AwsProxy, spy: Spy) -> Iterator[Aws]:
    """A clean moto and proxy for one test; auth checking off until the test turns it on."""
    moto_server.set_auth(False)
    moto_server.reset()
    proxy_server.reset()
    spy.reset()
    yield Aws(moto_server, proxy_server, spy)
    moto_server.set_auth(False)


@pytest.fixture
def awsu(awsu_bin: Path, tmp_path: Path, aws: Aws) -> Iterator[Awsu]:
    runner = Awsu(awsu_bin, tmp_path / "home", aws)
    yield runner
    # Secrets learned late (a cache entry written by a later run) are checked against
    # the stderr of every earlier run too.
    runner.check_no_secrets()
