import ArgumentParser
import NIOCore

// `hiscore-bench server`: what the load generator sends (workloads, key and score distribution).
// Shared by both targets so Hiscore and Redis see exactly the same operations.

/// The board (Hiscore) / sorted-set key (Redis) every workload uses.
let loadBoardID = "lb"

/// Which server speaks on the other end.
enum LoadTarget: String, ExpressibleByArgument, CaseIterable, Sendable {
    case hiscore
    case redis
}

/// A workload: what each operation is.
enum LoadWorkload: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Keep-best write of a random score in [0, players) for a random player.
    case submit
    /// `submit` asking for no ranks in the reply (`skip_ranks`): what `ZADD GT` does, which
    /// returns no rank either (on Redis the two workloads are the same command). Its players and
    /// scores are drawn from a stream of their own (see `LoadOpSource`).
    case submit_unranked
    /// Rank of a random (existing) player.
    case rank
    /// The 10 best entries.
    case top10
    /// 50 entries starting at 0-based offset 5000 (ranks 5001-5050).
    case page
    /// The player and 5 entries either side of a random player.
    case around
    /// 70% rank, 20% submit, 5% top10, 5% around (per operation, drawn from the seeded PRNG).
    case mixed
}

/// One operation's kind. `preloadBatch` is only used by `--preload`.
enum LoadOpKind: UInt8, Sendable {
    case submit
    case submitUnranked
    case rank
    case top10
    case page
    case around
    case preloadBatch

    var name: String {
        switch self {
        case .submit: "submit"
        case .submitUnranked: "submit_unranked"
        case .rank: "rank"
        case .top10: "top10"
        case .page: "page"
        case .around: "around"
        case .preloadBatch: "preload"
        }
    }
}

/// Page geometry shared by both targets.
enum LoadShape {
    static let top10Limit = 10
    static let pageOffset = 5000
    static let pageLimit = 50
    static let aroundSide = 5
    static let preloadBatchSize = 1000
}

/// One operation: for submit/rank/around `player` is the player index; for submit `score` is the
/// submitted score; for a preload batch `player` is the first player index of the batch and
/// `score` the number of players in it.
struct LoadOp: Sendable {
    var kind: LoadOpKind
    var player: Int
    var score: Int
}

/// SplitMix64: the deterministic PRNG of the load generator.
struct LoadRandom: Sendable {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return LoadRandom.mix(state)
    }

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, bound) (the modulo bias is negligible for bounds far below 2^64).
    @inline(__always)
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// The preload score of player `index`: a random integer in [0, players), a pure function of
    /// (seed, index) so that any connection can produce any batch.
    static func preloadScore(seed: UInt64, index: Int, players: Int) -> Int {
        Int(mix(seed &+ 0x5EED_0000_0000_0000 &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15) % UInt64(players))
    }
}

/// Produces one connection's operations.
struct LoadOpSource: Sendable {
    let workload: LoadWorkload?  // nil = preload
    let players: Int
    var random: LoadRandom
    /// Preload: the next batch index this connection sends, and the stride between its batches.
    var nextBatch: Int
    let batchStride: Int

    init(workload: LoadWorkload, players: Int, seed: UInt64, connectionIndex: Int) {
        self.workload = workload
        self.players = players
        // submit_unranked draws its own (player, score) sequence: run after `submit` with the same
        // one, every keep-best write would repeat a score already stored and change nothing.
        let stream: UInt64 = workload == .submit_unranked ? 0x5B17_A4E5_0000_0001 : 0
        self.random = LoadRandom(seed: LoadRandom.mix(seed ^ stream ^ (UInt64(connectionIndex) &* 0xD1B5_4A32_D192_ED03)))
        self.nextBatch = 0
        self.batchStride = 1
    }

    init(preloadPlayers players: Int, connectionIndex: Int, connections: Int) {
        self.workload = nil
        self.players = players
        self.random = LoadRandom(seed: 0)
        self.nextBatch = connectionIndex
        self.batchStride = connections
    }

    /// How many preload batches connection `index` of `connections` sends for `players` players.
    static func preloadBatches(players: Int, connectionIndex: Int, connections: Int) -> Int {
        let batches = (players + LoadShape.preloadBatchSize - 1) / LoadShape.preloadBatchSize
        return batches > connectionIndex ? (batches - connectionIndex + connections - 1) / connections : 0
    }

    @inline(__always)
    mutating func next() -> LoadOp {
        guard let workload else {
            let first = nextBatch * LoadShape.preloadBatchSize
            nextBatch += batchStride
            return LoadOp(kind: .preloadBatch, player: first, score: min(LoadShape.preloadBatchSize, players - first))
        }
        switch workload {
        case .submit: return submitOp()
        case .submit_unranked: return submitOp(kind: .submitUnranked)
        case .rank: return LoadOp(kind: .rank, player: random.below(players), score: 0)
        case .top10: return LoadOp(kind: .top10, player: 0, score: 0)
        case .page: return LoadOp(kind: .page, player: 0, score: 0)
        case .around: return LoadOp(kind: .around, player: random.below(players), score: 0)
        case .mixed:
            let draw = random.below(100)
            if draw < 70 { return LoadOp(kind: .rank, player: random.below(players), score: 0) }
            if draw < 90 { return submitOp() }
            if draw < 95 { return LoadOp(kind: .top10, player: 0, score: 0) }
            return LoadOp(kind: .around, player: random.below(players), score: 0)
        }
    }

    /// As redis-benchmark's `ZADD lb GT __rand_int__ p:__rand_int__ -r N`: score and player drawn
    /// independently, both uniform in [0, players).
    @inline(__always)
    private mutating func submitOp(kind: LoadOpKind = .submit) -> LoadOp {
        let score = random.below(players)
        return LoadOp(kind: kind, player: random.below(players), score: score)
    }
}

/// Player ids: "p:" and the index as 12 zero-padded decimal digits (`p:%012d`), 14 bytes.
enum LoadPlayerID {
    static let length = 14

    @inline(__always)
    static func write(_ index: Int, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
            out[0] = UInt8(ascii: "p")
            out[1] = UInt8(ascii: ":")
            var value = index
            var position = length - 1
            while position >= 2 {
                out[position] = UInt8(truncatingIfNeeded: 48 + value % 10)
                value /= 10
                position -= 1
            }
            return length
        }
    }

    static func string(_ index: Int) -> String {
        let digits = String(index)
        return "p:" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
}

/// Decimal digits of a non-negative integer.
@inline(__always)
func loadDecimalLength(_ value: Int) -> Int {
    var length = 1
    var rest = value
    while rest >= 10 {
        rest /= 10
        length += 1
    }
    return length
}

/// Writes a non-negative integer in decimal.
@inline(__always)
func loadWriteDecimal(_ value: Int, into buffer: inout ByteBuffer) {
    let length = loadDecimalLength(value)
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
        var rest = value
        var position = length - 1
        while position >= 0 {
            out[position] = UInt8(truncatingIfNeeded: 48 + rest % 10)
            rest /= 10
            position -= 1
        }
        return length
    }
}
