"""Enums of hiscore.proto without their prefixes (the values are the wire values)."""
from __future__ import annotations

import enum


class SortOrder(enum.IntEnum):
    DESCENDING = 0  # higher is better
    ASCENDING = 1  # lower is better


class WriteOperator(enum.IntEnum):
    BEST = 0
    SET = 1
    INCREMENT = 2
    DECREMENT = 3


class RankMode(enum.IntEnum):
    DEFAULT = 0  # the board's mode (in a request) / ordinal (in a board config)
    ORDINAL = 1  # 1, 2, 3, 4
    COMPETITION = 2  # 1, 2, 2, 4
    DENSE = 3  # 1, 2, 2, 3 (boards created with RankMode.DENSE only)


class ResetPeriod(enum.IntEnum):
    NONE = 0  # the board never resets by itself (reset_board still works)
    DAILY = 1
    WEEKLY = 2
    MONTHLY = 3


class WindowChangeKind(enum.IntEnum):
    UNSPECIFIED = 0
    ENTERED = 1
    LEFT = 2
    MOVED = 3
