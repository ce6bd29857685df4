"""Python client for Hiscore, the real-time leaderboard server (wire protocol v1).

    import asyncio, hiscore

    async def main():
        async with await hiscore.AsyncClient.connect("127.0.0.1", 7450) as client:
            await client.submit("weekly", "alice", 1200)
            page = await client.top("weekly", 10)

Results are the generated protobuf messages (`hiscore.pb`); failures raise `hiscore.HiscoreError`
subclasses carrying the gRPC status `code`.
"""
from __future__ import annotations

from ._proto import hiscore_pb2 as pb
from .client import (DEFAULT_MAX_QUEUED_EVENTS, AsyncClient, PendingCall, SubmitItem, Subscription,
                     make_submit)
from .errors import (Aborted, AlreadyExists, Cancelled, ConnectionLost, DataLoss, DeadlineExceeded,
                     FailedPrecondition, HiscoreError, Internal, InvalidArgument, NotFound,
                     OutOfRange, PermissionDenied, ProtocolError, ResourceExhausted, StatusCode,
                     SubscriptionLagged, Unauthenticated, Unavailable, Unimplemented, Unknown)
from .framing import DEFAULT_PORT, PREFACE, PROTOCOL_VERSION
from .sync import Client, SyncSubscription
from .tls import tls_context
from .types import RankMode, ResetPeriod, SortOrder, WindowChangeKind, WriteOperator

__version__ = "0.1.0"

__all__ = [
    "pb", "AsyncClient", "Client", "PendingCall", "Subscription", "SyncSubscription", "SubmitItem", "make_submit",
    "StatusCode", "HiscoreError", "ConnectionLost", "ProtocolError", "Cancelled", "Unknown",
    "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal",
    "Unavailable", "DataLoss", "Unauthenticated", "SubscriptionLagged", "SortOrder",
    "WriteOperator", "RankMode", "ResetPeriod", "WindowChangeKind", "DEFAULT_PORT", "PREFACE", "PROTOCOL_VERSION",
    "tls_context", "DEFAULT_MAX_QUEUED_EVENTS",
]
