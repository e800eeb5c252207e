"""The YKOATH applet of the virtual card, written from Yubico's YKOATH protocol description.

The applet is independent of any transport: `process` takes one command APDU and
returns the response data and status word, as the card would send them.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .apdu import (
    SW_AUTH_REQUIRED,
    SW_CLA_NOT_SUPPORTED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_NO_SPACE,
    SW_NO_SUCH_OBJECT,
    SW_OK,
    SW_WRONG_DATA,
    SW_WRONG_P1P2,
    ApduError,
    Command,
    encode_tlv,
    parse_tlvs,
    read_tlv,
)
from .control import Control
from .state import (
    ALGORITHM_SHA1,
    HASH_NAMES,
    PROPERTY_INCREASING,
    PROPERTY_TOUCH,
    TYPE_HOTP,
    TYPE_TOTP,
    CardState,
    Credential,
)

OATH_AID = bytes.fromhex("a0000005272101")

INS_PUT = 0x01
INS_DELETE = 0x02
INS_SET_CODE = 0x03
INS_RESET = 0x04
INS_RENAME = 0x05
INS_LIST = 0xA1
INS_CALCULATE = 0xA2
INS_VALIDATE = 0xA3
INS_SELECT_OR_CALCULATE_ALL = 0xA4
INS_SEND_REMAINING = 0xA5

TAG_NAME = 0x71
TAG_NAME_LIST = 0x72
TAG_KEY = 0x73
TAG_CHALLENGE = 0x74
TAG_RESPONSE = 0x75
TAG_TRUNCATED = 0x76
TAG_HOTP = 0x77
TAG_PROPERTY = 0x78
TAG_VERSION = 0x79
TAG_IMF = 0x7A
TAG_ALGORITHM = 0x7B
TAG_TOUCH = 0x7C

MAX_NAME_LENGTH = 64
# Largest response sent at once; longer ones are chained with 61xx and SEND REMAINING.
MAX_RESPONSE_CHUNK = 256
INSTRUCTION_NAMES = {
    INS_PUT: "PUT",
    INS_DELETE: "DELETE",
    INS_SET_CODE: "SET CODE",
    INS_RESET: "RESET",
    INS_RENAME: "RENAME",
    INS_LIST: "LIST",
    INS_CALCULATE: "CALCULATE",
    INS_VALIDATE: "VALIDATE",
    INS_SEND_REMAINING: "SEND REMAINING",
}


@dataclass
class Outcome:
    """The response to one command, plus facts for the APDU log (never secrets or codes)."""

    data: bytes = b""
    sw: int = SW_OK
    log: dict = field(default_factory=dict)


def _hmac(credential: Credential, message: bytes) -> bytes:
    return hmac.new(credential.secret, message, HASH_NAMES[credential.algorithm]).digest()


def _truncate(digest: bytes) -> bytes:
    # RFC 4226 dynamic truncation. The top bit is left as it is: the client masks it.
    offset = digest[-1] & 0x0F
    return digest[offset : offset + 4]


class OathApplet:
    """YKOATH applet state: the persistent card state plus the per-session state."""

    def __init__(
        self,
        state: CardState,
        save: Callable[[CardState], None],
        control: Control,
        version: tuple[int, int, int] = (5, 4, 3),
        capacity: int = 64,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.state = state
        self.save = save
        self.control = control
        self.version = version
        self.capacity = capacity
        self.sleep = sleep
        self.power_off()

    def power_off(self) -> None:
        """Forget the session: selection, authentication, pending response and command chain."""
        self.selected = False
        self.authenticated = False
        self.challenge: bytes | None = None
        self.pending = b""
        self.chained_data = b""

    def process(self, command: Command) -> Outcome:
        """Execute one command APDU and return the (possibly chained) response."""
        try:
            outcome = self._dispatch(command)
        except ApduError as error:
            self.pending = b""
            return Outcome(b"", error.sw, {"error": error.reason} if error.reason else {})
        if outcome.sw == SW_OK and command.ins != INS_SEND_REMAINING:
            self.pending = outcome.data
            outcome.data = b""
            return self._next_chunk(outcome)
        return outcome

    def _next_chunk(self, outcome: Outcome) -> Outcome:
        chunk, self.pending = self.pending[:MAX_RESPONSE_CHUNK], self.pending[MAX_RESPONSE_CHUNK:]
        outcome.data = chunk
        if self.pending:
            remaining = len(self.pending)
            outcome.sw = 0x6100 | (remaining if remaining < 256 else 0)
        else:
            outcome.sw = SW_OK
        return outcome

    def _dispatch(self, command: Command) -> Outcome:
        if command.cla & ~0x10 != 0:
            raise ApduError(SW_CLA_NOT_SUPPORTED, f"CLA {command.cla:#04x}")

        if command.cla & 0x10:
            # ISO command chaining: collect the data until the last block.
            self.chained_data += command.data
            return Outcome()
        if self.chained_data:
            command.data = self.chained_data + command.data
            self.chained_data = b""

        if command.ins == INS_SELECT_OR_CALCULATE_ALL and command.p1 == 0x04:
            return self._select(command)
        if command.ins != INS_SEND_REMAINING:
            self.pending = b""
        if not self.selected:
            raise ApduError(SW_INS_NOT_SUPPORTED, "no application selected")

        if command.ins == INS_RESET:
            return self._reset(command)
        if command.ins == INS_VALIDATE:
            return self._validate(command)
        if command.ins not in INSTRUCTION_NAMES and command.ins != INS_SELECT_OR_CALCULATE_ALL:
            raise ApduError(SW_INS_NOT_SUPPORTED, f"unknown instruction {command.ins:#04x}")

        if self.state.access_key is not None and not self.authenticated:
            raise ApduError(SW_AUTH_REQUIRED, "access key set and session not validated")

        handlers = {
            INS_PUT: self._put,
            INS_DELETE: self._delete,
            INS_SET_CODE: self._set_code,
            INS_RENAME: self._rename,
            INS_LIST: self._list,
            INS_CALCULATE: self._calculate,
            INS_SELECT_OR_CALCULATE_ALL: self._calculate_all,
            INS_SEND_REMAINING: self._send_remaining,
        }
        return handlers[command.ins](command)

    def _select(self, command: Command) -> Outcome:
        self.power_off()
        if command.data != OATH_AID:
            raise ApduError(SW_FILE_NOT_FOUND, f"AID {command.data.hex()} not found")
        self.selected = True
        response = encode_tlv(TAG_VERSION, bytes(self.version)) + encode_tlv(TAG_NAME, self.state.salt)
        if self.state.access_key is not None:
            self.challenge = secrets.token_bytes(8)
            response += encode_tlv(TAG_CHALLENGE, self.challenge)
            response += encode_tlv(TAG_ALGORITHM, bytes([ALGORITHM_SHA1]))
        return Outcome(response, log={"aid": command.data.hex()})

    def _reset(self, command: Command) -> Outcome:
        if (command.p1, command.p2) != (0xDE, 0xAD):
            raise ApduError(SW_WRONG_P1P2, "RESET needs P1=DE P2=AD")
        self.state = CardState()
        self.save(self.state)
        self.authenticated = False
        self.challenge = None
        return Outcome()

    def _parse_put(self, data: bytes) -> tuple[bytes | None, bytes | None, int, int | None]:
        name = key = None
        properties = 0
        imf = None
        offset = 0
        while offset < len(data):
            if data[offset] == TAG_PROPERTY:
                # The property is a bare tag and value byte, with no length byte.
                if offset + 1 >= len(data):
                    raise ApduError(SW_WRONG_DATA, "property tag without a value")
                properties = data[offset + 1]
                offset += 2
                continue
            tag, value, offset = read_tlv(data, offset)
            if tag == TAG_NAME:
                name = value
            elif tag == TAG_KEY:
                key = value
            elif tag == TAG_IMF:
                if len(value) != 4:
                    raise ApduError(SW_WRONG_DATA, f"IMF of {len(value)} bytes, expected 4")
                imf = int.from_bytes(value, "big")
            else:
                raise ApduError(SW_WRONG_DATA, f"unexpected tag {tag:#04x} in PUT")
        return name, key, properties, imf

    def _put(self, command: Command) -> Outcome:
        name, key, properties, imf = self._parse_put(command.data)
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ApduError(SW_WRONG_DATA, f"name must be 1 to {MAX_NAME_LENGTH} bytes")
        if key is None or len(key) < 2:
            raise ApduError(SW_WRONG_DATA, "missing key")
        oath_type, algorithm, digits, secret = key[0] & 0xF0, key[0] & 0x0F, key[1], key[2:]
        if oath_type not in (TYPE_HOTP, TYPE_TOTP):
            raise ApduError(SW_WRONG_DATA, f"unknown OATH type {oath_type:#04x}")
        if algorithm not in HASH_NAMES:
            raise ApduError(SW_WRONG_DATA, f"unknown algorithm {algorithm:#04x}")
        if not 6 <= digits <= 8:
            raise ApduError(SW_WRONG_DATA, f"{digits} digits, expected 6 to 8")
        block_size = 128 if HASH_NAMES[algorithm] == "sha512" else 64
        if len(secret) > block_size:
            raise ApduError(SW_WRONG_DATA, f"secret of {len(secret)} bytes exceeds {block_size}")
        if properties & ~(PROPERTY_TOUCH | PROPERTY_INCREASING):
            raise ApduError(SW_WRONG_DATA, f"unknown property {properties:#04x}")

        credential = Credential(
            name=name,
            oath_type=oath_type,
            algorithm=algorithm,
            digits=digits,
            secret=secret,
            touch=bool(properties & PROPERTY_TOUCH),
            counter=imf or 0,
        )
        existing = self.state.find(name)
        if existing is not None:
            self.state.credentials[self.state.credentials.index(existing)] = credential
        elif len(self.state.credentials) >= self.capacity:
            raise ApduError(SW_NO_SPACE, f"all {self.capacity} credential slots are used")
        else:
            self.state.credentials.append(credential)
        self.save(self.state)
        return Outcome(log={"credential": name.decode("utf-8", "replace")})

    def _name_from(self, data: bytes) -> bytes:
        for tag, value in parse_tlvs(data):
            if tag == TAG_NAME:
                return value
        raise ApduError(SW_WRONG_DATA, "missing name tag")

    def _delete(self, command: Command) -> Outcome:
        name = self._name_from(command.data)
        credential = self.state.find(name)
        log = {"credential": name.decode("utf-8", "replace")}
        if credential is None:
            raise ApduError(SW_NO_SUCH_OBJECT, "credential not found")
        self.state.credentials.remove(credential)
        self.save(self.state)
        return Outcome(log=log)

    def _rename(self, command: Command) -> Outcome:
        names = [value for tag, value in parse_tlvs(command.data) if tag == TAG_NAME]
        if len(names) != 2 or not names[1] or len(names[1]) > MAX_NAME_LENGTH:
            raise ApduError(SW_WRONG_DATA, "RENAME needs an old and a new name")
        credential = self.state.find(names[0])
        if credential is None:
            raise ApduError(SW_NO_SUCH_OBJECT, "credential not found")
        if self.state.find(names[1]) is not None:
            raise ApduError(SW_WRONG_DATA, "new name already exists")
        credential.name = names[1]
        self.save(self.state)
        return Outcome(log={"credential": names[1].decode("utf-8", "replace")})

    def _set_code(self, command: Command) -> Outcome:
        fields = dict(parse_tlvs(command.data))
        if TAG_KEY not in fields:
            raise ApduError(SW_WRONG_DATA, "missing key tag")
        key = fields[TAG_KEY]
        if not key:
            self.state.access_key = None
            self.save(self.state)
            return Outcome(log={"access_key": "removed"})
        if key[0] & 0x0F != ALGORITHM_SHA1:
            raise ApduError(SW_WRONG_DATA, f"access key algorithm {key[0]:#04x} is not HMAC-SHA1")
        if TAG_CHALLENGE not in fields or TAG_RESPONSE not in fields:
            raise ApduError(SW_WRONG_DATA, "SET CODE needs a challenge and a response")
        expected = hmac.new(key[1:], fields[TAG_CHALLENGE], "sha1").digest()
        if not hmac.compare_digest(expected, fields[TAG_RESPONSE]):
            raise ApduError(SW_WRONG_DATA, "response does not match the new key")
        self.state.access_key = key[1:]
        self.save(self.state)
        return Outcome(log={"access_key": "set"})

    def _validate(self, command: Command) -> Outcome:
        if self.state.access_key is None or self.challenge is None:
            raise ApduError(SW_NO_SUCH_OBJECT, "no access key set or no challenge outstanding")
        fields = dict(parse_tlvs(command.data))
        if TAG_RESPONSE not in fields or TAG_CHALLENGE not in fields:
            raise ApduError(SW_WRONG_DATA, "VALIDATE needs a response and a challenge")
        expected = hmac.new(self.state.access_key, self.challenge, "sha1").digest()
        if not hmac.compare_digest(expected, fields[TAG_RESPONSE]):
            self.authenticated = False
            raise ApduError(SW_WRONG_DATA, "wrong response to the card challenge")
        self.authenticated = True
        self.challenge = None
        answer = hmac.new(self.state.access_key, fields[TAG_CHALLENGE], "sha1").digest()
        return Outcome(encode_tlv(TAG_RESPONSE, answer))

    def _list(self, command: Command) -> Outcome:
        response = b"".join(
            encode_tlv(TAG_NAME_LIST, bytes([credential.oath_type | credential.algorithm]) + credential.name)
            for credential in self.state.credentials
        )
        return Outcome(response, log={"count": len(self.state.credentials)})

    def _wait_for_touch(self, log: dict) -> None:
        settings = self.control.read()
        log["touch"] = settings.touch
        if settings.touch == "timeout":
            self.sleep(settings.touch_timeout)
            raise ApduError(settings.touch_timeout_sw, "touch timed out")
        self.sleep(settings.touch_delay)

    def _code(self, credential: Credential, challenge: bytes, truncated: bool) -> bytes:
        if credential.oath_type == TYPE_HOTP:
            message = credential.counter.to_bytes(8, "big")
            credential.counter += 1
            self.save(self.state)
        else:
            message = challenge
        digest = _hmac(credential, message)
        if truncated:
            return encode_tlv(TAG_TRUNCATED, bytes([credential.digits]) + _truncate(digest))
        return encode_tlv(TAG_RESPONSE, bytes([credential.digits]) + digest)

    def _calculate(self, command: Command) -> Outcome:
        if command.p2 not in (0x00, 0x01):
            raise ApduError(SW_WRONG_P1P2, f"CALCULATE P2 {command.p2:#04x}, expected 00 or 01")
        fields = dict(parse_tlvs(command.data))
        if TAG_NAME not in fields:
            raise ApduError(SW_WRONG_DATA, "missing name tag")
        log = {"credential": fields[TAG_NAME].decode("utf-8", "replace")}
        credential = self.state.find(fields[TAG_NAME])
        if credential is None:
            raise ApduError(SW_NO_SUCH_OBJECT, "credential not found")
        if credential.oath_type == TYPE_TOTP and TAG_CHALLENGE not in fields:
            raise ApduError(SW_WRONG_DATA, "missing challenge tag")
        log["type"] = "totp" if credential.oath_type == TYPE_TOTP else "hotp"
        if credential.touch:
            try:
                self._wait_for_touch(log)
            except ApduError as error:
                error.reason = f"{error.reason} ({log['credential']})"
                raise
        response = self._code(credential, fields.get(TAG_CHALLENGE, b""), command.p2 == 0x01)
        return Outcome(response, log=log)

    def _calculate_all(self, command: Command) -> Outcome:
        if command.p1 != 0x00:
            raise ApduError(SW_WRONG_P1P2, f"P1 {command.p1:#04x} with INS A4")
        if command.p2 not in (0x00, 0x01):
            raise ApduError(SW_WRONG_P1P2, f"CALCULATE ALL P2 {command.p2:#04x}, expected 00 or 01")
        fields = dict(parse_tlvs(command.data))
        if TAG_CHALLENGE not in fields:
            raise ApduError(SW_WRONG_DATA, "missing challenge tag")
        response = b""
        for credential in self.state.credentials:
            response += encode_tlv(TAG_NAME, credential.name)
            if credential.oath_type == TYPE_HOTP:
                response += encode_tlv(TAG_HOTP, bytes([credential.digits]))
            elif credential.touch:
                response += encode_tlv(TAG_TOUCH, bytes([credential.digits]))
            else:
                response += self._code(credential, fields[TAG_CHALLENGE], command.p2 == 0x01)
        return Outcome(response, log={"count": len(self.state.credentials)})

    def _send_remaining(self, command: Command) -> Outcome:
        if not self.pending:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED, "no response data pending")
        return self._next_chunk(Outcome())
