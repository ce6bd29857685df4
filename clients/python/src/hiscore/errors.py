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
        cls: Type[HiscoreError] = HiscoreError
        try:
            cls = _BY_CODE.get(StatusCode(code), HiscoreError)
        except ValueError:
            pass
        if not issubclass(cls, _FixedCodeError):
            return HiscoreError(code, message, call_id=call_id)
        err = cls(message, call_id=call_id)
        err.raw_code = int(code)
        return err


class _FixedCodeError(HiscoreError):
    """Base of the per-code subclasses: the code comes from the class."""

    def __init__(self, message: str = "", *, call_id: int = 0) -> None:
        HiscoreError.__init__(self, type(self).code, message, call_id=call_id)


class Cancelled(_FixedCodeError):
    """Status CANCELLED (1)."""

    code = StatusCode.CANCELLED


class Unknown(_FixedCodeError):
    """Status UNKNOWN (2)."""

    code = StatusCode.UNKNOWN


class InvalidArgument(_FixedCodeError):
    """Status INVALID_ARGUMENT (3)."""

    code = StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(_FixedCodeError):
    """Status DEADLINE_EXCEEDED (4)."""

    code = StatusCode.DEADLINE_EXCEEDED


class NotFound(_FixedCodeError):
    """Status NOT_FOUND (5)."""

    code = StatusCode.NOT_FOUND


class AlreadyExists(_FixedCodeError):
    """Status ALREADY_EXISTS (6)."""

    code = StatusCode.ALREADY_EXISTS


class PermissionDenied(_FixedCodeError):
    """Status PERMISSION_DENIED (7)."""

    code = StatusCode.PERMISSION_DENIED


class ResourceExhausted(_FixedCodeError):
    """Status RESOURCE_EXHAUSTED (8)."""

    code = StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(_FixedCodeError):
    """Status FAILED_PRECONDITION (9)."""

    code = StatusCode.FAILED_PRECONDITION


class Aborted(_FixedCodeError):
    """Status ABORTED (10)."""

    code = StatusCode.ABORTED


class OutOfRange(_FixedCodeError):
    """Status OUT_OF_RANGE (11)."""

    code = StatusCode.OUT_OF_RANGE


class Unimplemented(_FixedCodeError):
    """Status UNIMPLEMENTED (12)."""

    code = StatusCode.UNIMPLEMENTED


class Internal(_FixedCodeError):
    """Status INTERNAL (13)."""

    code = StatusCode.INTERNAL


class Unavailable(_FixedCodeError):
    """Status UNAVAILABLE (14)."""

    code = StatusCode.UNAVAILABLE


class DataLoss(_FixedCodeError):
    """Status DATA_LOSS (15)."""

    code = StatusCode.DATA_LOSS


class Unauthenticated(_FixedCodeError):
    """Status UNAUTHENTICATED (16)."""

    code = StatusCode.UNAUTHENTICATED


_BY_CODE: Dict[StatusCode, Type[_FixedCodeError]] = {
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


class SubscriptionLagged(ResourceExhausted):
    """A subscription's consumer fell behind: more than `max_queued_events` events arrived that
    it had not taken yet. The client cancelled the stream and dropped its later events; the
    events queued before are still delivered, then this is raised. Subscribe again for a fresh
    snapshot (or consume faster, or raise `max_queued_events`).

    Raised by the client, not the server (which coalesces events and resends a snapshot to
    readers that stop reading the socket, but cannot see one that reads it and then queues).
    """
