/// When a write is acknowledged, and so what a crash can lose (see docs/durability.md).
public enum DurabilityMode: String, Sendable, CaseIterable {
    /// Acknowledge after the group commit's `fdatasync` covers the write: nothing acknowledged is
    /// lost, even on power failure.
    case fsync
    /// Acknowledge once the write is queued; the writer thread writes it to the kernel at once and
    /// `fdatasync`s at most every `asyncFlushInterval` (Redis `appendfsync everysec`). A process
    /// crash loses only what was not yet handed to the kernel (well under a millisecond); an OS
    /// crash or power loss loses up to about one interval.
    case async
    /// No files at all: a restart loses everything.
    case memory
}

/// A point in a shard's log: the logical byte offset just after a record, counted over every
/// segment written since the log was opened (positions do not survive a restart).
public struct LogPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let offset: UInt64

    public init(offset: UInt64) { self.offset = offset }

    public static let zero = LogPosition(offset: 0)

    public static func < (lhs: LogPosition, rhs: LogPosition) -> Bool { lhs.offset < rhs.offset }

    public var description: String { "@\(offset)" }
}
