import HiscoreCore

/// `TopResponse.next_cursor`: where a page ended, and on which board incarnation.
///
/// A rank key alone reads as a position on any board: a cursor kept across a season reset, or
/// from a board deleted and created again (or another board), would page the new board from
/// an arbitrary place without a word. The cursor names the entries it was cut from; any other
/// board is refused, and the client starts again from offset 0.
///
/// The incarnation alone does not name them: incarnations are numbered per data directory, so a
/// server in memory mode numbers its boards from 1 again after a restart, and a data directory
/// restored from an older backup reuses numbers handed out since. The board's `identity` (a hash
/// of its id and of the microsecond its period started) tells those apart.
///
/// Layout (41 bytes): format 2 | incarnation (8 bytes, big-endian) | identity (8 bytes,
/// big-endian) | rank key (24 bytes).
struct PageCursor: Equatable {
    static let format: UInt8 = 2
    static let byteCount = 1 + 8 + 8 + RankKey.byteCount

    let incarnation: UInt64
    let identity: UInt64
    let key: RankKey

    /// One allocation: the array itself (a page answer makes one per call).
    var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.byteCount) { buffer, initialized in
            buffer[0] = Self.format
            var at = 1
            for word in [incarnation, identity, key.word0, key.word1, key.word2] {
                for shift in stride(from: 56, through: 0, by: -8) {
                    buffer[at] = UInt8(truncatingIfNeeded: word >> UInt64(shift))
                    at += 1
                }
            }
            assert(at == Self.byteCount)
            initialized = at
        }
    }

    init(board: BoardHandle, key: RankKey) {
        self.incarnation = board.incarnation
        self.identity = Self.identity(of: board)
        self.key = key
    }

    /// nil for bytes that are not a cursor this server made.
    init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount, bytes[0] == Self.format,
            let key = RankKey(bytes: bytes[17...])
        else { return nil }
        self.incarnation = bytes[1..<9].reduce(0) { $0 << 8 | UInt64($1) }
        self.identity = bytes[9..<17].reduce(0) { $0 << 8 | UInt64($1) }
        self.key = key
    }

    /// Whether the cursor was cut from `board`'s entries.
    func belongs(to board: BoardHandle) -> Bool {
        incarnation == board.incarnation && identity == Self.identity(of: board)
    }

    static func identity(of board: BoardHandle) -> UInt64 {
        PlayerHash.hash(board.config.id) ^ (UInt64(bitPattern: board.periodStartedAt) &* 0x9E37_79B9_7F4A_7C15)
    }
}
