"""Persistent memory of the virtual card: credentials, access key and salt.

The state is a JSON file that the card rewrites after every change, so killing the
card process (a removal) and starting it again (an insertion) keeps its data.
The file contains secret keys in hex: it is the card's memory, never a log.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

TYPE_HOTP = 0x10
TYPE_TOTP = 0x20
ALGORITHM_SHA1 = 0x01
ALGORITHM_SHA256 = 0x02
ALGORITHM_SHA512 = 0x03
HASH_NAMES = {ALGORITHM_SHA1: "sha1", ALGORITHM_SHA256: "sha256", ALGORITHM_SHA512: "sha512"}

PROPERTY_INCREASING = 0x01
PROPERTY_TOUCH = 0x02

STATE_FORMAT = 1


@dataclass
class Credential:
    """One OATH credential as the card stores it."""

    name: bytes
    oath_type: int
    algorithm: int
    digits: int
    secret: bytes
    touch: bool = False
    counter: int = 0

    def to_json(self) -> dict:
        return {
            "name_hex": self.name.hex(),
            "name": self.name.decode("utf-8", "replace"),
            "type": "totp" if self.oath_type == TYPE_TOTP else "hotp",
            "algorithm": HASH_NAMES[self.algorithm],
            "digits": self.digits,
            "secret_hex": self.secret.hex(),
            "touch": self.touch,
            "counter": self.counter,
        }

    @classmethod
    def from_json(cls, data: dict) -> Credential:
        algorithms = {name: code for code, name in HASH_NAMES.items()}
        return cls(
            name=bytes.fromhex(data["name_hex"]),
            oath_type=TYPE_TOTP if data["type"] == "totp" else TYPE_HOTP,
            algorithm=algorithms[data["algorithm"]],
            digits=int(data["digits"]),
            secret=bytes.fromhex(data["secret_hex"]),
            touch=bool(data.get("touch", False)),
            counter=int(data.get("counter", 0)),
        )


@dataclass
class CardState:
    """The card's non-volatile memory."""

    salt: bytes = field(default_factory=lambda: secrets.token_bytes(8))
    access_key: bytes | None = None
    credentials: list[Credential] = field(default_factory=list)

    def find(self, name: bytes) -> Credential | None:
        for credential in self.credentials:
            if credential.name == name:
                return credential
        return None

    def set_password(self, password: str) -> None:
        """Set the access key the way YKOATH clients derive it (PBKDF2-HMAC-SHA1, 1000 rounds, 16 bytes)."""
        self.access_key = hashlib.pbkdf2_hmac("sha1", password.encode(), self.salt, 1000, 16)

    def to_json(self) -> dict:
        return {
            "format": STATE_FORMAT,
            "salt_hex": self.salt.hex(),
            "access_key_hex": self.access_key.hex() if self.access_key else None,
            "credentials": [credential.to_json() for credential in self.credentials],
        }

    @classmethod
    def from_json(cls, data: dict) -> CardState:
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported card state format {data.get('format')!r}, expected {STATE_FORMAT}")
        key = data.get("access_key_hex")
        return cls(
            salt=bytes.fromhex(data["salt_hex"]),
            access_key=bytes.fromhex(key) if key else None,
            credentials=[Credential.from_json(item) for item in data.get("credentials", [])],
        )

    @classmethod
    def load(cls, path: Path) -> CardState:
        """Load the state, or create a new empty card when the file does not exist or is empty."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        if not text.strip():
            return cls()
        return cls.from_json(json.loads(text))

    def save(self, path: Path) -> None:
        """Write the state atomically, so a kill during a write never leaves half a file."""
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        os.replace(temporary, path)
