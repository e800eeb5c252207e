"""awsu's main job, end to end, against local emulators only.

Starts moto behind the validating proxy and a virtual YubiKey under pcscd.
Creates an IAM user with keys and a role, and registers a virtual MFA device
with `awsu register`, whose secret goes on the card. Then writes a throwaway
AWS config and runs `awsu -p demo -- PROGRAM` twice: the first run gets a
session token and the role with a code from the card, and the second is
served from the cache.
Everything listens on 127.0.0.1 and is stopped at the end.

Run it with scripts/demo, which installs and builds what it needs first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import boto3  # noqa: E402

from harness.awsproxy import start_proxy  # noqa: E402
from harness.moto_harness import MotoServer  # noqa: E402
from harness.pcsc_harness import PcscStack  # noqa: E402

ACCOUNT = "123456789012"
USER = "demo-user"
ROLE = "demo-admin"

# Prints the identity that the program's environment carries.
PROGRAM = [
    sys.executable,
    "-c",
    "import boto3, os; "
    "print('  program sees:', boto3.client('sts').get_caller_identity()['Arn'], "
    "'until', os.environ['AWSU_EXPIRES'])",
]


def step(message: str) -> None:
    print(f"\n== {message}", flush=True)


def aws_client(service: str, endpoint: str):
    # moto's request checking is off, so these example keys only set up the account.
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )


def create_account(endpoint: str) -> tuple[dict, str]:
    """Create the user, its keys and the role; return the keys and the role ARN."""
    iam = aws_client("iam", endpoint)
    iam.create_user(UserName=USER)
    iam.put_user_policy(
        UserName=USER,
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    keys = iam.create_access_key(UserName=USER)["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return keys, role_arn


def run_awsu(awsu: Path, env: dict[str, str]) -> None:
    command = [str(awsu), "-v", "-p", "demo", "--", *PROGRAM]
    print("$ awsu -v -p demo -- python -c '...get_caller_identity...'", flush=True)
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, stdin=subprocess.DEVNULL)
    print(f"  ({time.monotonic() - started:.2f} s)", flush=True)


def main() -> int:
    awsu = Path(os.environ.get("AWSU_BIN", REPO_ROOT / "target" / "debug" / "awsu"))
    if not awsu.exists():
        print(f"demo: {awsu} not found: build it with cargo build", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="awsu-demo-") as home_text:
        home = Path(home_text)
        step("Starting moto behind the validating proxy, and a virtual YubiKey under pcscd")
        with MotoServer(log_path=home / "moto.log") as moto, start_proxy(moto.url) as proxy, PcscStack(
            workdir=home / "pcsc"
        ) as card:
            print(f"  AWS emulator: {proxy.url}   card reader: {card.reader_name}")

            step("Creating an IAM user with an access key, and a role it may assume")
            keys, role_arn = create_account(proxy.url)
            env = {
                "PATH": card.client_env()["PATH"],
                "HOME": str(home),
                "AWS_CONFIG_FILE": str(home / "config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
                "AWS_ENDPOINT_URL": proxy.url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "USER": "demo",
            }
            (home / "credentials").write_text(
                f"[{USER}]\naws_access_key_id = {keys['AccessKeyId']}\n"
                f"aws_secret_access_key = {keys['SecretAccessKey']}\n"
            )

            step("Registering a virtual MFA device: its secret goes on the YubiKey")
            print(f"$ awsu -p {USER} register {USER} --qr=false", flush=True)
            serial = subprocess.run(
                [str(awsu), "-p", USER, "register", USER, "--qr=false"],
                env=env,
                check=True,
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            ).stdout.strip()
            print(f"  serial: {serial}")
            print("  card now holds:", card.ykman("oath", "accounts", "list").stdout.strip())

            (home / "config").write_text(
                f"[profile demo]\nrole_arn = {role_arn}\nsource_profile = {USER}\n"
                f"mfa_serial = {serial}\nregion = eu-central-1\n"
            )
            step(f"Wrote {home / 'config'}:")
            print((home / "config").read_text().rstrip())

            step("First run: waits for a code unused by register, then a session token and the role")
            run_awsu(awsu, env)
            step("Second run: served from the cache, no call to AWS, no card access")
            apdus_before = len(card.log_records())
            requests_before = len(proxy.stats()["requests"])
            run_awsu(awsu, env)

            stats = proxy.stats()
            second_run = [request["action"] for request in stats["requests"][requests_before:]]
            by_awsu = [action for action in second_run if action != "GetCallerIdentity"]
            step("What AWS and the card saw")
            print(f"  calls by action, in all: {json.dumps(stats['actions'])}")
            print(f"  calls during the second run: {len(second_run)} ({', '.join(second_run)}: the program's own)")
            print(f"  calls by awsu during the second run: {len(by_awsu)}")
            print(f"  card APDUs during the second run: {len(card.log_records()) - apdus_before}")

    step("Stopped moto, the proxy, pcscd and the card; removed the temporary directory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
