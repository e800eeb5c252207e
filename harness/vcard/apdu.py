"""ISO 7816-4 command APDU parsing and BER-TLV helpers for the virtual card."""

from __future__ import annotations

from dataclasses import dataclass

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_AUTH_REQUIRED = 0x6982
SW_NO_SUCH_OBJECT = 0x6984
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82
SW_NO_SPACE = 0x6A84
SW_WRONG_P1P2 = 0x6A86
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00


class ApduError(Exception):
    """A command that the card rejects with a status word."""

    def __init__(self, sw: int, reason: str = ""):
        super().__init__(f"SW {sw:04X}: {reason}")
        self.sw = sw
        self.reason = reason


@dataclass
class Command:
    """A parsed command APDU (ISO 7816-4 cases 1 to 4, short or extended)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    extended: bool


def parse_command(raw: bytes) -> Command:
    """Parse a command APDU in short or extended form.

    Raises ApduError(6700) when the length fields do not match the payload size.
    """
    if len(raw) < 4:
        raise ApduError(SW_WRONG_LENGTH, f"command APDU of {len(raw)} bytes is shorter than its header")
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    body = raw[4:]

    if not body:
        return Command(cla, ins, p1, p2, b"", None, False)

    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0] or 256, False)

    if body[0] != 0:
        # Short case 3 or 4: Lc, data, optional Le.
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, body[1:], None, False)
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256, False)
        raise ApduError(SW_WRONG_LENGTH, f"short Lc {lc} does not match {len(body) - 1} body bytes")

    # Extended form: a zero byte, then a 2-byte Lc or Le.
    if len(body) == 3:
        le = int.from_bytes(body[1:3], "big") or 65536
        return Command(cla, ins, p1, p2, b"", le, True)
    lc = int.from_bytes(body[1:3], "big")
    if lc and len(body) == 3 + lc:
        return Command(cla, ins, p1, p2, body[3:], None, True)
    if lc and len(body) == 5 + lc:
        le = int.from_bytes(body[-2:], "big") or 65536
        return Command(cla, ins, p1, p2, body[3 : 3 + lc], le, True)
    raise ApduError(SW_WRONG_LENGTH, f"extended Lc {lc} does not match {len(body) - 3} body bytes")


def encode_tlv(tag: int, value: bytes = b"") -> bytes:
    """Encode one TLV with a 1-byte tag and a BER length."""
    length = len(value)
    if length < 0x80:
        header = bytes([tag, length])
    elif length <= 0xFF:
        header = bytes([tag, 0x81, length])
    else:
        header = bytes([tag, 0x82]) + length.to_bytes(2, "big")
    return header + value


def read_tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """Read the TLV at offset and return (tag, value, next offset).

    Raises ApduError(6A80) on a truncated TLV.
    """
    if offset + 2 > len(data):
        raise ApduError(SW_WRONG_DATA, f"truncated TLV header at offset {offset}")
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length == 0x81:
        if offset + 1 > len(data):
            raise ApduError(SW_WRONG_DATA, "truncated BER length")
        length = data[offset]
        offset += 1
    elif length == 0x82:
        if offset + 2 > len(data):
            raise ApduError(SW_WRONG_DATA, "truncated BER length")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
    elif length > 0x82:
        raise ApduError(SW_WRONG_DATA, f"unsupported BER length byte {length:#04x}")
    end = offset + length
    if end > len(data):
        raise ApduError(SW_WRONG_DATA, f"TLV {tag:#04x} claims {length} bytes, {len(data) - offset} left")
    return tag, data[offset:end], end


def parse_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a sequence of TLVs into (tag, value) pairs."""
    items = []
    offset = 0
    while offset < len(data):
        tag, value, offset = read_tlv(data, offset)
        items.append((tag, value))
    return items
