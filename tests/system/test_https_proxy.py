"""awsu through an HTTPS proxy: moto_proxy intercepts sts.us-east-1.amazonaws.com with its own CA.

Both run in a private network namespace with only loopback up, so nothing can reach a real
AWS host even if the proxy settings were ignored. The endpoint is the real STS host name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from moto.moto_proxy.certificate_creator import CertificateCreator

from support import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET_ACCESS_KEY, Awsu, Result

RUNNER = Path(__file__).with_name("moto_proxy_runner.py")
PROXY_PORT = 5005

# Starts moto_proxy, waits for its port, runs the awsu command given as arguments, then stops
# the proxy and exits with awsu's status.
NAMESPACE_SCRIPT = """
ip link set lo up || exit 90
"$PROXY_PYTHON" "$PROXY_RUNNER" "$PROXY_CERT_DIR" -H 127.0.0.1 -p "$PROXY_PORT" </dev/null >"$PROXY_LOG" 2>&1 &
proxy=$!
ready=no
for _ in $(seq 200); do
    if "$PROXY_PYTHON" -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$PROXY_PORT" 2>/dev/null; then
        ready=yes
        break
    fi
    sleep 0.05
done
if [ "$ready" != yes ]; then
    kill "$proxy"
    echo "moto_proxy did not listen on port $PROXY_PORT" >&2
    exit 91
fi
"$@"
status=$?
kill "$proxy"
wait "$proxy"
exit "$status"
"""


def namespaces_available() -> str | None:
    """Return why a private network namespace cannot be used here, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    completed = subprocess.run(
        ["unshare", "-n", "--", "ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=10
    )
    if completed.returncode != 0:
        return f"unshare -n failed: {completed.stderr.strip()}"
    return None


def run_through_proxy(awsu: Awsu, tmp_path: Path, ca_bundle: bool) -> tuple[Result, str]:
    """Run `awsu -p foo` through moto_proxy in a private network namespace. Return the
    result and the proxy's log without colour codes."""
    reason = namespaces_available()
    if reason:
        pytest.skip(reason)
    awsu.write_files(
        credentials=(
            f"[foo]\naws_access_key_id = {EXAMPLE_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {EXAMPLE_SECRET_ACCESS_KEY}\n"
            "mfa_serial = arn:aws:iam::123456789012:mfa/foo\n"
        )
    )
    proxy_log = tmp_path / "moto_proxy.log"
    env = awsu.env(
        {
            "HTTPS_PROXY": f"http://127.0.0.1:{PROXY_PORT}",
            "PROXY_PYTHON": sys.executable,
            "PROXY_RUNNER": str(RUNNER),
            "PROXY_CERT_DIR": str(tmp_path / "certs"),
            "PROXY_PORT": str(PROXY_PORT),
            "PROXY_LOG": str(proxy_log),
        },
        endpoint=False,
    )
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = CertificateCreator.cacert

    result = awsu.run(
        "-g", "manual", "-v", "-p", "foo",
        stdin_text="123456\n",
        env=env,
        command_prefix=["unshare", "-n", "--", "sh", "-c", NAMESPACE_SCRIPT, "sh"],
    )

    log = proxy_log.read_text() if proxy_log.exists() else "(no log)"
    return result, log.replace("\x1b[33m", "").replace("\x1b[0m", "")


def test_https_proxy_with_ca_bundle(awsu: Awsu, tmp_path: Path) -> None:
    result, log = run_through_proxy(awsu, tmp_path, ca_bundle=True)

    assert result.returncode == 0, f"{result.describe()}\n--- moto_proxy log ---\n{log}"
    assert "POST https://sts.us-east-1.amazonaws.com/" in log, log
    assert result.exports.get("AWS_SESSION_TOKEN"), result.describe()
    assert result.exports["AWSU_PROFILE"] == "foo"
    assert len(awsu.cache_entries()) == 1


def test_https_proxy_untrusted_certificate(awsu: Awsu, tmp_path: Path) -> None:
    """Without AWS_CA_BUNDLE the proxy's certificate is not trusted: a clear error, no credentials."""
    result, log = run_through_proxy(awsu, tmp_path, ca_bundle=False)

    assert result.returncode != 0, result.describe()
    assert result.elapsed < 15, result.describe()
    assert "could not reach STS at https://sts.us-east-1.amazonaws.com" in result.stderr, result.describe()
    assert "certificate" in result.stderr.lower(), result.describe()
    assert result.exports == {}
    assert awsu.cache_entries() == []
