/// How a write combines with a player's stored entry.
public enum WriteOperator: UInt8, Sendable {
    /// Keep the better of the stored and the submitted (score, subscore).
    case best
    /// Replace the stored score and subscore.
    case set
    /// Add to the stored score (saturating); the subscore is set to the submitted one.
    case increment
    /// Subtract from the stored score (saturating); the subscore is set to the submitted one.
    case decrement
}

/// How ties in (score, subscore) are ranked.
public enum RankMode: UInt8, Sendable {
    /// 1, 2, 3, 4: ties broken by arrival sequence.
    case ordinal
    /// "1224": 1 + entries with a strictly better (score, subscore).
    case competition
    /// "1223": 1 + number of distinct strictly better (score, subscore) values.
    case dense
}

/// A field that failed validation, and why.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// Rules for player and board identifiers: 1–128 bytes of `[A-Za-z0-9_.:-]`.
public enum Identifier {
    public static let maxBytes = 128

    @inline(__always)
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"),
            UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// The allowed bytes as a 128-bit set (bit b of `allowedLow` / `allowedHigh` for byte b / b - 64):
    /// `-` `.` `0`-`9` `:` (45, 46, 48-58) and `A`-`Z` `_` `a`-`z` (65-90, 95, 97-122). Literals,
    /// not computed from `isAllowed`: a computed static is a lazy global, checked on every use
    /// (the test of every ASCII byte holds the two in agreement).
    private static let allowedLow: UInt64 = 0x07FF_6000_0000_0000
    private static let allowedHigh: UInt64 = 0x07FF_FFFE_87FF_FFFE

    /// Whether every byte is allowed: a table lookup per byte over the string's contiguous UTF-8
    /// (every submit checks its player id: iterating `String.UTF8View` byte by byte was ~1.5% of a
    /// submit's server CPU).
    @inline(__always)
    static func allAllowed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var bad: UInt64 = 0
        for byte in bytes {
            let bit = UInt64(byte & 63)
            let set = byte < 64 ? allowedLow : allowedHigh
            bad |= (byte >> 7 == 0 ? ~set >> bit : 1) & 1
        }
        return bad == 0
    }

    /// Throws unless `s` is a valid identifier; `field` names it in the error (e.g. "player_id").
    public static func validate(_ s: String, field: String) throws(ValidationError) {
        let utf8 = s.utf8
        let length = utf8.count
        if length == 0 {
            throw ValidationError(field: field, reason: "empty, at least 1 byte required")
        }
        if length > maxBytes {
            throw ValidationError(field: field, reason: "\(length) bytes, at most \(maxBytes) allowed")
        }
        if utf8.withContiguousStorageIfAvailable(allAllowed) == true { return }
        for (offset, byte) in utf8.enumerated() where !isAllowed(byte) {
            let shown = byte >= 0x20 && byte < 0x7f ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
            throw ValidationError(
                field: field,
                reason: "\(shown) at offset \(offset) is not allowed (allowed: A-Z a-z 0-9 _ . : -)")
        }
    }
}

/// Per-board limits.
public struct BoardLimits: Sendable, Equatable {
    /// Hard ceiling for `maxMetadataBytes`.
    public static let metadataCeiling = 4096

    /// Maximum players on the board; 0 = unlimited. Enforced by the server across partitions.
    public var maxEntries: Int
    /// Maximum opaque metadata bytes per entry (at most `metadataCeiling`).
    public var maxMetadataBytes: Int

    public init(maxEntries: Int = 0, maxMetadataBytes: Int = 256) {
        self.maxEntries = maxEntries
        self.maxMetadataBytes = maxMetadataBytes
    }

    public func validate() throws(ValidationError) {
        if maxEntries < 0 {
            throw ValidationError(field: "max_entries", reason: "\(maxEntries) is negative (0 = unlimited)")
        }
        if maxMetadataBytes < 0 || maxMetadataBytes > Self.metadataCeiling {
            throw ValidationError(
                field: "max_metadata_bytes",
                reason: "\(maxMetadataBytes) is outside 0...\(Self.metadataCeiling)")
        }
    }
}

/// What defines a board's ranking.
public struct BoardConfig: Sendable, Equatable {
    public var id: String
    public var scoreOrder: SortOrder
    public var subscoreOrder: SortOrder
    public var writeOperator: WriteOperator
    public var rankMode: RankMode
    public var limits: BoardLimits
    /// Game clients holding a player token may submit their own scores (off by default).
    public var clientWrites: Bool
    /// Season resets; nil = never (admins can still reset by hand).
    public var resetSchedule: ResetSchedule?

    public init(
        id: String, scoreOrder: SortOrder = .descending, subscoreOrder: SortOrder = .descending,
        writeOperator: WriteOperator = .best, rankMode: RankMode = .ordinal, limits: BoardLimits = BoardLimits(),
        clientWrites: Bool = false, resetSchedule: ResetSchedule? = nil
    ) {
        self.resetSchedule = resetSchedule
        self.id = id
        self.scoreOrder = scoreOrder
        self.subscoreOrder = subscoreOrder
        self.writeOperator = writeOperator
        self.rankMode = rankMode
        self.limits = limits
        self.clientWrites = clientWrites
    }

    /// Descending score and subscore, `best`, ordinal ranks, default limits.
    public static func defaultConfig(id: String) -> BoardConfig { BoardConfig(id: id) }

    public var codec: KeyCodec { KeyCodec(scoreOrder: scoreOrder, subscoreOrder: subscoreOrder) }

    public func validate() throws(ValidationError) {
        try Identifier.validate(id, field: "board_id")
        try limits.validate()
        try resetSchedule?.validate()
    }
}
