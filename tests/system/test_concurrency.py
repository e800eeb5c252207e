"""Concurrent awsu processes sharing one HOME: one MFA code and one STS call per layer
between them, a consistent cache directory, and bounded waits for a stuck holder."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from fault_fixtures import (
    PROMPT_LINE,
    WAITING_NOTICE,
    card,  # noqa: F401  (pytest fixture)
    card_commands,
    check_cache_consistent,
    describe,
    entries_of_kind,
    finish,
    kill_session,
    locked_files,
    make_role_account,
    put_on_card,
    run_concurrently,
    spawn,
)
from support import totp

PARALLEL_RUNS = 32
CALCULATE = "A2"


def test_cold_runs_card(aws, awsu, card):
    account = make_role_account(aws, awsu)
    put_on_card(card, account.serial, account.seed)
    calculations_before = len(card_commands(card, CALCULATE))

    results = run_concurrently(awsu, PARALLEL_RUNS, ["-v", "-p", "app", "--", "true"])

    for result in results:
        assert result.returncode == 0, describe(result)
    actions = aws.actions()
    assert actions.get("GetSessionToken") == 1, actions
    assert actions.get("AssumeRole") == 1, actions
    assert len(card_commands(card, CALCULATE)) - calculations_before == 1
    entries = check_cache_consistent(awsu)
    assert len(entries) == 2, [path.name for path in entries]
    assert len(entries_of_kind(awsu, "role")) == 1
    assert locked_files(awsu) == []


def test_cold_runs_manual(aws, awsu):
    account = make_role_account(aws, awsu)
    code = aws.code(account.serial)

    results = run_concurrently(
        awsu, PARALLEL_RUNS, ["-v", "-g", "manual", "-p", "app", "--", "true"], stdin_text=code + "\n"
    )

    for result in results:
        assert result.returncode == 0, describe(result)
    prompts = sum(result.stderr.count(PROMPT_LINE) for result in results)
    assert prompts == 1
    actions = aws.actions()
    assert actions.get("GetSessionToken") == 1, actions
    assert actions.get("AssumeRole") == 1, actions
    assert len(check_cache_consistent(awsu)) == 2
    assert locked_files(awsu) == []


def test_same_serial_waits_next_step(aws, awsu):
    make_role_account(aws, awsu, roles=("app", "admin"))
    # Both runs must start in one 30-second step for the second to meet a used step.
    if time.time() % 30 > 20:
        time.sleep(30 - time.time() % 30 + 0.5)

    first = awsu.run("-v", "-n", "-g", "manual", "-p", "app", "--", "true")
    second = awsu.run("-v", "-n", "-g", "manual", "-p", "admin", "--", "true")

    assert first.returncode == 0, describe(first)
    assert second.returncode == 0, describe(second)
    assert "was already used; waiting" in second.stderr
    assert second.elapsed > 1.0
    codes = [request.params.get("TokenCode") for request in aws.requests("GetSessionToken")]
    assert len(codes) == 2
    assert codes[0] != codes[1]
    assert awsu.cache_entries() == []


def test_roles_share_session(aws, awsu):
    account = make_role_account(aws, awsu, roles=("app", "admin"))
    code = aws.code(account.serial)
    started = time.monotonic()
    arguments = {name: ["-v", "-g", "manual", "-p", name, "--", "true"] for name in ("app", "admin")}
    processes = {name: spawn(awsu, args) for name, args in arguments.items()}
    # Both get their input before either is awaited: either one may be the one that prompts.
    for process in processes.values():
        process.stdin.write((code + "\n").encode())
        process.stdin.close()
        process.stdin = None

    results = [finish(awsu, process, arguments[name], started) for name, process in processes.items()]

    for result in results:
        assert result.returncode == 0, describe(result)
    assert sum(result.stderr.count(PROMPT_LINE) for result in results) == 1
    actions = aws.actions()
    assert actions.get("GetSessionToken") == 1, actions
    assert actions.get("AssumeRole") == 2, actions
    assert len(entries_of_kind(awsu, "session token")) == 1
    assert len(entries_of_kind(awsu, "role")) == 2
    check_cache_consistent(awsu)


def test_lock_timeout_at_prompt(aws, awsu, tmp_path: Path):
    account = make_role_account(aws, awsu)
    env = awsu.env({"AWSU_LOCK_TIMEOUT": "3s"})
    holder_args = ["-v", "-g", "manual", "-p", "app", "--", "true"]
    holder_log = tmp_path / "holder.stderr"
    started = time.monotonic()
    with open(holder_log, "wb") as log:
        holder = subprocess.Popen(
            [str(awsu.binary), *holder_args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, env=env, cwd=awsu.home, start_new_session=True,
        )
    try:
        while PROMPT_LINE not in holder_log.read_text() and time.monotonic() - started < 20:
            time.sleep(0.05)
        assert PROMPT_LINE in holder_log.read_text(), holder_log.read_text()

        waiter_args = ["-v", "-g", "manual", "-p", "app", "--", "true"]
        waiter_started = time.monotonic()
        waiter = finish(
            awsu, spawn(awsu, waiter_args, env=env), waiter_args, waiter_started, timeout=30,
            stdin_text=totp(account.seed, int(time.time() // 30)) + "\n",
        )
        assert waiter.returncode == 1, describe(waiter)
        assert waiter.elapsed < 10, describe(waiter)
        assert WAITING_NOTICE in waiter.stderr
        assert "timed out after 3s waiting for another awsu" in waiter.stderr
        assert "it may be waiting at a prompt" in waiter.stderr
        assert PROMPT_LINE not in waiter.stderr
    finally:
        # End of input at the prompt makes the holder fail and release its locks.
        holder.stdin.close()
        holder.stdin = None
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_session(holder)
    holder_result = finish(awsu, holder, holder_args, started)
    holder_result.stderr = holder_log.read_text()

    assert holder.returncode == 1
    assert "no one-time password was entered" in holder_result.stderr
    assert aws.actions().get("GetSessionToken") is None
    assert awsu.cache_entries() == []
    assert locked_files(awsu) == []


def test_waiter_takes_over_after_holder_fails(aws, awsu, tmp_path: Path):
    account = make_role_account(aws, awsu)
    args = ["-v", "-g", "manual", "-p", "app", "--", "true"]
    logs = {name: tmp_path / f"{name}.stderr" for name in ("holder", "waiter")}
    started = time.monotonic()
    processes = {}
    try:
        for name in ("holder", "waiter"):
            with open(logs[name], "wb") as log:
                processes[name] = subprocess.Popen(
                    [str(awsu.binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=log, env=awsu.env(), cwd=awsu.home, start_new_session=True,
                )
            marker = PROMPT_LINE if name == "holder" else WAITING_NOTICE
            while marker not in logs[name].read_text() and time.monotonic() - started < 20:
                time.sleep(0.05)
            assert marker in logs[name].read_text(), logs[name].read_text()

        # The holder gets no code and fails; the waiter must then prompt and succeed itself.
        processes["holder"].stdin.close()
        processes["holder"].stdin = None
        waiter = processes["waiter"]
        waiter.stdin.write((totp(account.seed, int(time.time() // 30)) + "\n").encode())
        waiter.stdin.close()
        waiter.stdin = None
        results = {}
        for name, process in processes.items():
            results[name] = finish(awsu, process, args, started, timeout=30)
            results[name].stderr = logs[name].read_text()
    finally:
        for process in processes.values():
            if process.poll() is None:
                kill_session(process)

    assert results["holder"].returncode == 1, describe(results["holder"])
    assert "no one-time password was entered" in results["holder"].stderr
    assert results["waiter"].returncode == 0, describe(results["waiter"])
    assert PROMPT_LINE in results["waiter"].stderr
    actions = aws.actions()
    assert actions.get("GetSessionToken") == 1, actions
    assert actions.get("AssumeRole") == 1, actions
    assert len(check_cache_consistent(awsu)) == 2
    assert locked_files(awsu) == []
