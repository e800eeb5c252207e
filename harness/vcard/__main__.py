"""Command line entry point of the virtual card."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from .control import Control
from .oath import OathApplet
from .state import CardState
from .vpcd import ApduLog, VirtualCard


def _parse_version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(part.isdigit() and int(part) < 256 for part in parts):
        raise argparse.ArgumentTypeError(f"invalid version {text!r}, expected MAJOR.MINOR.PATCH such as 5.4.3")
    return int(parts[0]), int(parts[1]), int(parts[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.vcard",
        description="Virtual YubiKey OATH card that connects to pcscd's vpcd reader driver.",
    )
    parser.add_argument("--state", type=Path, required=True, help="JSON file with the card's credentials; created when missing")
    parser.add_argument("--log", type=Path, required=True, help="file to append one JSON line per card event and command to")
    parser.add_argument("--port", type=int, default=35963, help="vpcd TCP port: 35963 is slot 0 (default), 35964 slot 1")
    parser.add_argument("--host", default="127.0.0.1", help="vpcd host (default 127.0.0.1)")
    parser.add_argument("--control", type=Path, help="control file with touch and hang settings, read before each command")
    parser.add_argument("--version", type=_parse_version, default=(5, 4, 3), help="OATH applet version to report (default 5.4.3)")
    # NOTE: a real YubiKey 5 before firmware 5.7 has room for 32 OATH credentials. The default of 64
    # (the 5.7 figure) lets tests store 40+ credentials while reporting version 5.4.3.
    parser.add_argument("--capacity", type=int, default=64, help="number of credential slots (default 64)")
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="vcard %(levelname)s %(message)s", stream=sys.stderr)
    # SIGTERM is a card removal: exit through Python so the log file is flushed and closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    try:
        state = CardState.load(arguments.state)
    except (ValueError, KeyError) as error:
        parser.error(f"invalid card state file {arguments.state}: {error}; delete it to start with an empty card")
    if not arguments.state.exists():
        state.save(arguments.state)

    control = Control(arguments.control)
    applet = OathApplet(
        state,
        save=lambda new_state: new_state.save(arguments.state),
        control=control,
        version=arguments.version,
        capacity=arguments.capacity,
    )
    card = VirtualCard(applet, control, ApduLog(arguments.log), arguments.host, arguments.port)
    try:
        card.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
