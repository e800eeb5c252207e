"""Runtime switches of the virtual card, read again before every command.

Settings come from environment variables (read once, at start) and are overridden by
an optional control file of `key=value` lines, which a test can rewrite at any time:

  touch=auto|timeout       auto: the touch arrives after touch_delay seconds;
                           timeout: no touch arrives, the card waits touch_timeout
                           seconds and then returns touch_timeout_sw
  touch_delay=SECONDS      default 1.0
  touch_timeout=SECONDS    default 15.0, the time a YubiKey 5 waits for a touch
  touch_timeout_sw=HEX     default 6985. NOTE: ykman 5.9.2 reports "Touch account
                           timed out!" only for 6982, and a generic error for 6985.
  hang=0|1                 1: the card receives commands but never responds to them
                           until hang is set back to 0

Environment variables: VCARD_TOUCH, VCARD_TOUCH_DELAY, VCARD_TOUCH_TIMEOUT,
VCARD_TOUCH_TIMEOUT_SW, VCARD_HANG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TOUCH_MODES = ("auto", "timeout")


@dataclass
class Settings:
    """One reading of the card's runtime switches."""

    touch: str = "auto"
    touch_delay: float = 1.0
    touch_timeout: float = 15.0
    touch_timeout_sw: int = 0x6985
    hang: bool = False


def _apply(settings: Settings, key: str, value: str, source: str) -> None:
    value = value.strip()
    try:
        if key == "touch":
            if value not in TOUCH_MODES:
                raise ValueError(f"expected one of {', '.join(TOUCH_MODES)}")
            settings.touch = value
        elif key == "touch_delay":
            settings.touch_delay = float(value)
        elif key == "touch_timeout":
            settings.touch_timeout = float(value)
        elif key == "touch_timeout_sw":
            settings.touch_timeout_sw = int(value, 16)
        elif key == "hang":
            settings.hang = value.lower() in ("1", "true", "yes", "on")
        else:
            raise ValueError("unknown setting")
    except ValueError as error:
        raise ValueError(f"invalid card setting {key}={value!r} in {source}: {error}") from error


class Control:
    """Reader of the control file and environment defaults."""

    def __init__(self, path: Path | None, environ: dict[str, str] | None = None):
        self.path = path
        self.defaults = Settings()
        environ = os.environ if environ is None else environ
        for key in ("touch", "touch_delay", "touch_timeout", "touch_timeout_sw", "hang"):
            value = environ.get("VCARD_" + key.upper())
            if value is not None:
                _apply(self.defaults, key, value, "the environment")

    def read(self) -> Settings:
        """Return the current settings: the environment defaults overridden by the control file."""
        settings = Settings(**vars(self.defaults))
        if self.path is None:
            return settings
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return settings
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, separator, value = line.partition("=")
            if not separator:
                raise ValueError(f"invalid line {line!r} in {self.path}: expected key=value")
            _apply(settings, key.strip(), value, str(self.path))
        return settings
