"""Status codes and typed errors (gRPC status codes, as in docs/protocol.md section 4)."""
from __future__ import annotations

import enum
from typing import Dict, Optional, Type


class StatusCode(enum.IntEnum):
    """`hiscore.v1.StatusCode` (the gRPC codes), without the STATUS_CODE_ prefix."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class HiscoreError(Exception):
    """A call failed. `code` is the status the server answered (or the local equivalent)."""

    code: StatusCode = StatusCode.UNKNOWN

    def __init__(self, code: "StatusCode | int", message: str = "", *, call_id: int = 0) -> None:
        try:
            self.code = StatusCode(code)
        except ValueError:  # a code newer than this client: keep it as UNKNOWN
            self.code = StatusCode.UNKNOWN
        self.raw_code = int(code)
        self.message = message
        self.call_id = call_id
        super().__init__(f"{self.code.name}: {message}" if message else self.code.name)

    @staticmethod
    def from_status(code: int, message: str = "", *, call_id: int = 0) -> "HiscoreError":
        """The most specific subclass for `code`."""
        try:
            cls = _BY_CODE.get(StatusCode(code), HiscoreError)
        except ValueError:
            cls = HiscoreError
        if cls is HiscoreError:
            return HiscoreError(code, message, call_id=call_id)
        err = cls(message, call_id=call_id)
        err.raw_code = int(code)
        return err


def _subclass(name: str, code: StatusCode) -> Type[HiscoreError]:
    def __init__(self: HiscoreError, message: str = "", *, call_id: int = 0) -> None:
        HiscoreError.__init__(self, code, message, call_id=call_id)

    cls = type(name, (HiscoreError,), {"__init__": __init__, "code": code,
                                       "__doc__": f"Status {code.name} ({int(code)})."})
    return cls


Cancelled = _subclass("Cancelled", StatusCode.CANCELLED)
Unknown = _subclass("Unknown", StatusCode.UNKNOWN)
InvalidArgument = _subclass("InvalidArgument", StatusCode.INVALID_ARGUMENT)
DeadlineExceeded = _subclass("DeadlineExceeded", StatusCode.DEADLINE_EXCEEDED)
NotFound = _subclass("NotFound", StatusCode.NOT_FOUND)
AlreadyExists = _subclass("AlreadyExists", StatusCode.ALREADY_EXISTS)
PermissionDenied = _subclass("PermissionDenied", StatusCode.PERMISSION_DENIED)
ResourceExhausted = _subclass("ResourceExhausted", StatusCode.RESOURCE_EXHAUSTED)
FailedPrecondition = _subclass("FailedPrecondition", StatusCode.FAILED_PRECONDITION)
Aborted = _subclass("Aborted", StatusCode.ABORTED)
OutOfRange = _subclass("OutOfRange", StatusCode.OUT_OF_RANGE)
Unimplemented = _subclass("Unimplemented", StatusCode.UNIMPLEMENTED)
Internal = _subclass("Internal", StatusCode.INTERNAL)
Unavailable = _subclass("Unavailable", StatusCode.UNAVAILABLE)
DataLoss = _subclass("DataLoss", StatusCode.DATA_LOSS)
Unauthenticated = _subclass("Unauthenticated", StatusCode.UNAUTHENTICATED)

_BY_CODE: Dict[StatusCode, Type[HiscoreError]] = {
    cls.code: cls
    for cls in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
                PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
                Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated)
}


class ConnectionLost(Unavailable):
    """The connection closed (or broke) while calls were pending, or was already closed.

    Like gRPC, a broken connection surfaces as UNAVAILABLE. `cause` is the server's
    connection-level error (call_id 0 frame) when it sent one before closing.
    """

    def __init__(self, message: str = "connection closed", *, call_id: int = 0,
                 cause: Optional[HiscoreError] = None) -> None:
        super().__init__(message, call_id=call_id)
        self.cause = cause


class ProtocolError(ConnectionLost):
    """The server broke the framing rules (bad flag, oversized or undecodable frame)."""
