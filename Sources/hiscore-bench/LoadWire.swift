import NIOCore

// The seam between the load generator (LoadGenerator.swift) and a server's protocol: Hiscore's
// length-prefixed protobuf frames (LoadHiscoreWire.swift) or Redis's RESP (RespLoadWire.swift).

/// One operation in flight. `aux`: the submitted score (submit) or batch size (preload batch).
struct LoadSlot {
    var startNanos: UInt64 = 0
    var kind: LoadOpKind = .rank
    /// Redis `around` is two commands: 0 = ZREVRANK sent, 1 = ZREVRANGE sent.
    var phase: UInt8 = 0
    var player: Int = 0
    var aux: Int = 0
    /// Submit replies: the stored score changed (the board version moved).
    var changed = false
}

/// What one reply meant.
enum LoadReply {
    /// Not a whole reply yet.
    case incomplete
    /// A frame that answers no call (Hiscore's hello).
    case ignored
    /// The call in `slot` is finished; `failures` items of it failed (0 = success).
    case done(slot: Int, failures: Int)
    /// The call needed another command, already written to the outbound buffer (Redis around).
    case followUp
}

/// Errors and per-target facts one connection observed. Keys are built only on the error path.
struct LoadErrorCounts: Sendable {
    private(set) var byKind: [String: Int] = [:]
    private(set) var total = 0

    mutating func add(_ kind: String, count: Int = 1) {
        byKind[kind, default: 0] += count
        total += count
    }

    mutating func merge(_ other: LoadErrorCounts) {
        for (kind, count) in other.byKind { add(kind, count: count) }
    }

    var summary: String {
        byKind.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }.joined(separator: "; ")
    }
}

struct LoadWireStats: Sendable {
    /// Commands/requests written (Redis around = 2 per operation).
    var commands = 0
    /// Hiscore submit replies with `changed = true` / Redis ZADD replies of 1 (only counts new
    /// members: ZADD GT without CH reports additions, not updates).
    var submitChanged = 0
    var submitReplies = 0
    /// Replies fully decoded and checked by the sampling verifier (Hiscore).
    var deepVerified = 0
    /// Redis preload: members ZADD reported as added.
    var added = 0

    mutating func merge(_ other: LoadWireStats) {
        commands += other.commands
        submitChanged += other.submitChanged
        submitReplies += other.submitReplies
        deepVerified += other.deepVerified
        added += other.added
    }
}

/// Options every wire needs.
struct LoadWireOptions: Sendable {
    var players: Int
    var seed: UInt64
    /// Hiscore: fully decode and check every N-th reply with HiscoreWire (0 = never).
    var verifyEvery: Int
}

/// A server protocol, as the load generator drives it.
protocol LoadWire {
    init(options: LoadWireOptions)
    var stats: LoadWireStats { get }
    /// Bytes to send right after connecting.
    mutating func writePreface(into buffer: inout ByteBuffer)
    /// Appends the request(s) that start `op` in `slot` (its `startNanos` is already set).
    mutating func encode(_ op: LoadOp, slot: Int, slots: inout [LoadSlot], into buffer: inout ByteBuffer)
    /// Consumes one reply from `inbound`, checks it, and says what it finished.
    /// Throws for protocol violations that make the connection unusable.
    mutating func nextReply(
        from inbound: inout ByteBuffer, slots: inout [LoadSlot], outbound: inout ByteBuffer,
        errors: inout LoadErrorCounts
    ) throws(LoadProtocolError) -> LoadReply
}

struct LoadProtocolError: Error, CustomStringConvertible, Sendable {
    var description: String
    init(_ description: String) { self.description = description }
}
