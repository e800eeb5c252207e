"""The vpcd side of the virtual card: a TCP client of pcscd's vpcd reader driver.

Wire format, both ways: a 2-byte big-endian length, then the payload. From the reader,
a 1-byte payload is a control code (0 power off, 1 power on, 2 reset, 4 get ATR). A
longer one is a command APDU, and the card replies with the response APDU (data, SW1, SW2).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from pathlib import Path

from .apdu import ApduError, parse_command
from .control import Control
from .oath import INSTRUCTION_NAMES, INS_SELECT_OR_CALCULATE_ALL, OathApplet

logger = logging.getLogger("vcard")

# The ATR of a YubiKey 5 over USB; ykman treats a card with it as a USB YubiKey.
YUBIKEY_ATR = bytes.fromhex("3BFD1300008131FE158073C021C057597562694B657940")

CONTROL_POWER_OFF = 0
CONTROL_POWER_ON = 1
CONTROL_RESET = 2
CONTROL_GET_ATR = 4
HANG_POLL_SECONDS = 0.05
RECONNECT_SECONDS = 0.1


class ApduLog:
    """Append-only JSON-lines log of card events and commands, flushed per line."""

    def __init__(self, path: Path):
        self.file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def write(self, event: str, **fields) -> None:
        record = {"time": round(time.time(), 6), "event": event, **fields}
        self.file.write(json.dumps(record) + "\n")


def _instruction_name(ins: int, p1: int) -> str:
    if ins == INS_SELECT_OR_CALCULATE_ALL:
        return "SELECT" if p1 == 0x04 else "CALCULATE ALL"
    return INSTRUCTION_NAMES.get(ins, "UNKNOWN")


class VirtualCard:
    """A card in one vpcd slot, which connects to the reader and reconnects after a disconnect."""

    def __init__(self, applet: OathApplet, control: Control, log: ApduLog, host: str, port: int):
        self.applet = applet
        self.control = control
        self.log = log
        self.host = host
        self.port = port
        # pcscd polls the ATR about every 0.4 s to detect removal: log only the first one.
        self.atr_logged = False

    def run_forever(self) -> None:
        """Serve the reader until the process is killed; reconnect after each disconnect."""
        self.log.write("start", port=self.port)
        while True:
            connection = self._connect()
            self.atr_logged = False
            self.log.write("connected", port=self.port)
            try:
                self._serve(connection)
            except (ConnectionError, OSError) as error:
                logger.info("connection to vpcd on port %d lost: %s", self.port, error)
            finally:
                connection.close()
            self.applet.power_off()
            self.log.write("disconnected")
            time.sleep(RECONNECT_SECONDS)

    def _connect(self) -> socket.socket:
        warned = False
        while True:
            try:
                connection = socket.create_connection((self.host, self.port), timeout=5)
            except OSError as error:
                if not warned:
                    logger.info("vpcd at %s:%d not reachable (%s), retrying", self.host, self.port, error)
                    warned = True
                time.sleep(RECONNECT_SECONDS)
                continue
            connection.settimeout(None)
            # Without these each APDU costs a delayed-ACK round of about 40 ms.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return connection

    @staticmethod
    def _receive_exactly(connection: socket.socket, size: int) -> bytes:
        buffer = b""
        while len(buffer) < size:
            # Linux clears TCP_QUICKACK after some ACKs, so it is set again before each read.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = connection.recv(size - len(buffer))
            if not chunk:
                raise ConnectionError("vpcd closed the connection")
            buffer += chunk
        return buffer

    def _serve(self, connection: socket.socket) -> None:
        while True:
            (length,) = struct.unpack(">H", self._receive_exactly(connection, 2))
            payload = self._receive_exactly(connection, length)
            if length == 1:
                reply = self._control(payload[0])
            else:
                self._wait_while_hung(payload)
                reply = self._command(payload)
            if reply is not None:
                connection.sendall(struct.pack(">H", len(reply)) + reply)

    def _control(self, code: int) -> bytes | None:
        if code == CONTROL_POWER_OFF:
            self.applet.power_off()
            self.log.write("power_off")
        elif code == CONTROL_POWER_ON:
            self.applet.power_off()
            self.log.write("power_on")
        elif code == CONTROL_RESET:
            self.applet.power_off()
            self.log.write("reset")
        elif code == CONTROL_GET_ATR:
            self._wait_while_hung(b"")
            if not self.atr_logged:
                self.log.write("atr")
                self.atr_logged = True
            return YUBIKEY_ATR
        else:
            logger.warning("unknown vpcd control code %d ignored", code)
            self.log.write("unknown_control", code=code)
        return None

    def _wait_while_hung(self, payload: bytes) -> None:
        if not self.control.read().hang:
            return
        self.log.write("hang", ins=f"{payload[1]:02X}" if len(payload) > 1 else None)
        while self.control.read().hang:
            time.sleep(HANG_POLL_SECONDS)
        self.log.write("unhang")

    def _command(self, raw: bytes) -> bytes:
        started = time.monotonic()
        try:
            command = parse_command(raw)
        except ApduError as error:
            self.log.write("apdu", ins=None, status=f"{error.sw:04X}", error=error.reason)
            return error.sw.to_bytes(2, "big")
        try:
            outcome = self.applet.process(command)
        except ValueError as error:
            # An invalid control file must not kill the card, so it replies 6F00 and logs the error.
            logger.error("command %02X failed: %s", command.ins, error)
            outcome_data, outcome_sw, extra = b"", 0x6F00, {"error": str(error)}
        else:
            outcome_data, outcome_sw, extra = outcome.data, outcome.sw, outcome.log
        self.log.write(
            "apdu",
            cla=f"{command.cla:02X}",
            ins=f"{command.ins:02X}",
            p1=f"{command.p1:02X}",
            p2=f"{command.p2:02X}",
            name=_instruction_name(command.ins, command.p1),
            extended=command.extended,
            lc=len(command.data),
            response_length=len(outcome_data),
            status=f"{outcome_sw:04X}",
            ms=round((time.monotonic() - started) * 1000, 3),
            **extra,
        )
        return outcome_data + outcome_sw.to_bytes(2, "big")
