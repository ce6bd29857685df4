/// Which scores rank first on a board (or which subscores break ties first).
public enum SortOrder: UInt8, Sendable {
    /// Higher is better.
    case descending
    /// Lower is better.
    case ascending
}

/// The fixed-width (24 bytes) ranking key of an entry.
///
/// Three words whose unsigned lexicographic order — equivalently the big-endian byte order of
/// `bytes` — *is* the ranking order: a smaller key ranks better.
/// - `word0`: the score, sign bit flipped (so signed order becomes unsigned order) and, for a
///   descending board, every bit inverted (so higher scores get smaller keys);
/// - `word1`: the subscore, encoded the same way for its own order;
/// - `word2`: the arrival sequence (lower = reached first = better).
public struct RankKey: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Key width in bytes; the radix tree indexes these bytes.
    public static let byteCount = 24

    public var word0: UInt64
    public var word1: UInt64
    public var word2: UInt64

    @inlinable
    public init(word0: UInt64, word1: UInt64, word2: UInt64) {
        self.word0 = word0
        self.word1 = word1
        self.word2 = word2
    }

    /// The smallest (best) possible key.
    public static let min = RankKey(word0: 0, word1: 0, word2: 0)
    /// The largest (worst) possible key.
    public static let max = RankKey(word0: .max, word1: .max, word2: .max)

    @inlinable
    public static func < (lhs: RankKey, rhs: RankKey) -> Bool {
        if lhs.word0 != rhs.word0 { return lhs.word0 < rhs.word0 }
        if lhs.word1 != rhs.word1 { return lhs.word1 < rhs.word1 }
        return lhs.word2 < rhs.word2
    }

    /// The 24 big-endian bytes; stable, so usable as an opaque paging cursor.
    public var bytes: [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(Self.byteCount)
        for word in [word0, word1, word2] {
            for shift in stride(from: 56, through: 0, by: -8) {
                result.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return result
    }

    /// Decodes `bytes`; nil unless exactly 24 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        for (index, byte) in bytes.enumerated() {
            switch index >> 3 {
            case 0: words.0 = words.0 << 8 | UInt64(byte)
            case 1: words.1 = words.1 << 8 | UInt64(byte)
            default: words.2 = words.2 << 8 | UInt64(byte)
            }
        }
        self.init(word0: words.0, word1: words.1, word2: words.2)
    }

    /// Byte `depth` (0 = most significant) of the big-endian form; what the radix tree branches on.
    @inline(__always)
    func byte(at depth: Int) -> UInt8 {
        assert(depth >= 0 && depth < Self.byteCount)
        let word = depth < 8 ? word0 : (depth < 16 ? word1 : word2)
        return UInt8(truncatingIfNeeded: word >> UInt64(56 - ((depth & 7) << 3)))
    }

    /// Index of the first byte where `self` and `other` differ, or 24 when they are equal.
    @inline(__always)
    func firstDifferingByte(from other: RankKey) -> Int {
        let x0 = word0 ^ other.word0
        if x0 != 0 { return x0.leadingZeroBitCount >> 3 }
        let x1 = word1 ^ other.word1
        if x1 != 0 { return 8 + x1.leadingZeroBitCount >> 3 }
        let x2 = word2 ^ other.word2
        if x2 != 0 { return 16 + x2.leadingZeroBitCount >> 3 }
        return Self.byteCount
    }

    /// The first key of this key's (score, subscore) tie group: the same words with sequence 0.
    /// Entries strictly better than it are exactly those with a strictly better (score, subscore),
    /// which is what competition ("1224") ranks count.
    @inlinable
    public var tieGroupStart: RankKey { RankKey(word0: word0, word1: word1, word2: 0) }

    /// True when both keys have the same (score, subscore).
    @inlinable
    public func isTied(with other: RankKey) -> Bool { word0 == other.word0 && word1 == other.word1 }

    public var description: String {
        func hex(_ word: UInt64) -> String {
            let digits = String(word, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return "RankKey(\(hex(word0)) \(hex(word1)) \(hex(word2)))"
    }
}

/// Encodes (score, subscore, sequence) into `RankKey`s for one board's orders, and back.
public struct KeyCodec: Sendable, Equatable {
    public let scoreOrder: SortOrder
    public let subscoreOrder: SortOrder

    public init(scoreOrder: SortOrder, subscoreOrder: SortOrder = .descending) {
        self.scoreOrder = scoreOrder
        self.subscoreOrder = subscoreOrder
    }

    @inline(__always)
    static func encode(_ value: Int64, _ order: SortOrder) -> UInt64 {
        let flipped = UInt64(bitPattern: value) ^ (1 << 63)
        return order == .ascending ? flipped : ~flipped
    }

    @inline(__always)
    static func decode(_ word: UInt64, _ order: SortOrder) -> Int64 {
        let flipped = order == .ascending ? word : ~word
        return Int64(bitPattern: flipped ^ (1 << 63))
    }

    @inline(__always)
    public func key(score: Int64, subscore: Int64, sequence: UInt64) -> RankKey {
        RankKey(
            word0: Self.encode(score, scoreOrder), word1: Self.encode(subscore, subscoreOrder), word2: sequence)
    }

    public func score(of key: RankKey) -> Int64 { Self.decode(key.word0, scoreOrder) }
    public func subscore(of key: RankKey) -> Int64 { Self.decode(key.word1, subscoreOrder) }
    public func sequence(of key: RankKey) -> UInt64 { key.word2 }

    /// The best key a (score, subscore) pair can have (sequence 0): `countBetter(firstKey)` counts
    /// the entries with a strictly better (score, subscore).
    public func firstKey(score: Int64, subscore: Int64) -> RankKey {
        key(score: score, subscore: subscore, sequence: 0)
    }

    /// The worst key a (score, subscore) pair can have (sequence UInt64.max).
    public func lastKey(score: Int64, subscore: Int64) -> RankKey {
        key(score: score, subscore: subscore, sequence: .max)
    }

    /// True when (scoreA, subscoreA) ranks strictly better than (scoreB, subscoreB).
    @inline(__always)
    public func isBetter(score scoreA: Int64, subscore subscoreA: Int64, than scoreB: Int64, _ subscoreB: Int64)
        -> Bool
    {
        let a0 = Self.encode(scoreA, scoreOrder)
        let b0 = Self.encode(scoreB, scoreOrder)
        if a0 != b0 { return a0 < b0 }
        return Self.encode(subscoreA, subscoreOrder) < Self.encode(subscoreB, subscoreOrder)
    }

    /// Key bounds (both inclusive) covering every entry whose score lies in `min...max`
    /// (nil = unbounded on that side), whatever its subscore and sequence. Nil when the score range
    /// is empty (min > max). Count with `BoardPartition.count(from:to:)`.
    public func keyRange(scoreMin: Int64?, scoreMax: Int64?) -> ClosedRange<RankKey>? {
        let low = scoreMin ?? .min
        let high = scoreMax ?? .max
        guard low <= high else { return nil }
        let best = scoreOrder == .descending ? high : low
        let worst = scoreOrder == .descending ? low : high
        let lower = RankKey(word0: Self.encode(best, scoreOrder), word1: 0, word2: 0)
        let upper = RankKey(word0: Self.encode(worst, scoreOrder), word1: .max, word2: .max)
        return lower...upper
    }

    /// The key whose strictly-better count, summed over partitions, gives a rank in `mode`
    /// (1 + sum). Ordinal: the key itself; competition: its tie group's first key. Dense ranks are
    /// not a sum over partitions; use `BoardPartition.distinctScoresBetter(than:)` on a single
    /// partition instead (this returns the tie group's first key for `.dense` too).
    public func rankProbe(for key: RankKey, mode: RankMode) -> RankKey {
        mode == .ordinal ? key : key.tieGroupStart
    }
}
