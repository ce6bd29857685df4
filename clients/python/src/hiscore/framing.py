"""The connection preface and the length-prefixed framing of docs/protocol.md sections 1-2.

Every frame: 1 flag byte (must be 0: no compression in version 1), a 4-byte big-endian body
length, then the protobuf body (a `Request` from the client, a `Response` from the server).
"""
from __future__ import annotations

import asyncio
import struct
from typing import List, Optional

PROTOCOL_VERSION = 1
#: ASCII "HISCORE" followed by the protocol version byte.
PREFACE = b"HISCORE" + bytes([PROTOCOL_VERSION])
HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size  # 5
DEFAULT_PORT = 7450
DEFAULT_MAX_FRAME_BYTES = 1_048_576


class FramingError(Exception):
    """Bytes that do not follow the framing rules."""


def encode_frame(body: bytes, *, flag: int = 0) -> bytes:
    """Frame one serialized protobuf message."""
    if not 0 <= flag <= 255:
        raise ValueError("flag must be a byte")
    if len(body) > 0xFFFFFFFF:
        raise ValueError("frame body too large")
    return HEADER.pack(flag, len(body)) + body


def decode_header(header: bytes, max_frame_bytes: int) -> int:
    """Validate a 5-byte header and return the body length."""
    if len(header) != HEADER_SIZE:
        raise FramingError(f"frame header must be {HEADER_SIZE} bytes, got {len(header)}")
    flag, length = HEADER.unpack(header)
    if flag == ord("H"):
        # What an HTTP server answers first: "HTTP/1.1 ...".
        raise FramingError(
            "frame flag 0x48 ('H'): the peer answers as an HTTP server does (hiscored's admin port?)")
    if flag in (0x15, 0x16):
        # A TLS record's first byte (alert, handshake): a TLS server answering a plain preface.
        raise FramingError(
            f"frame flag {flag:#04x}: that is a TLS record, so the server speaks TLS (hiscored "
            "--tls-cert): connect with ssl= (e.g. ssl=hiscore.tls_context(ca_file=...))")
    if flag != 0:
        raise FramingError(f"compressed/unknown frame flag {flag:#04x} (version 1 allows only 0)")
    if length > max_frame_bytes:
        raise FramingError(f"frame of {length} bytes exceeds the limit of {max_frame_bytes}")
    return int(length)


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get complete frame bodies out."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._need: Optional[int] = None  # body length of the frame being read

    def feed(self, data: bytes) -> List[bytes]:
        self._buf += data
        frames: List[bytes] = []
        while True:
            if self._need is None:
                if len(self._buf) < HEADER_SIZE:
                    break
                self._need = decode_header(bytes(self._buf[:HEADER_SIZE]), self.max_frame_bytes)
                del self._buf[:HEADER_SIZE]
            if len(self._buf) < self._need:
                break
            frames.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None
        return frames

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame (discarded if the connection ends now)."""
        return len(self._buf) + (HEADER_SIZE if self._need is not None else 0)


async def read_frame(reader: asyncio.StreamReader, max_frame_bytes: int) -> Optional[bytes]:
    """Read one frame body; None on end of stream (a frame cut short is discarded)."""
    try:
        header = await reader.readexactly(HEADER_SIZE)
    except asyncio.IncompleteReadError:
        return None
    length = decode_header(header, max_frame_bytes)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None
