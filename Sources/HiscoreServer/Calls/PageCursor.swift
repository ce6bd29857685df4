import HiscoreCore

/// `TopResponse.next_cursor`: where a page ended, and on which board incarnation.
///
/// A rank key alone reads as a position on any board: a cursor kept across a season reset, or
/// from a board deleted and created again (or another board), would page the new board from
/// an arbitrary place without a word. The incarnation (a season is one) ties the cursor to the
/// entries it was cut from; another is refused, and the client starts again from offset 0.
///
/// Layout (33 bytes): format 1 | incarnation (8 bytes, big-endian) | rank key (24 bytes).
struct PageCursor: Equatable {
    static let format: UInt8 = 1
    static let byteCount = 1 + 8 + RankKey.byteCount

    let incarnation: UInt64
    let key: RankKey

    var bytes: [UInt8] {
        var bytes: [UInt8] = [Self.format]
        bytes.reserveCapacity(Self.byteCount)
        withUnsafeBytes(of: incarnation.bigEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: key.bytes)
        return bytes
    }

    init(incarnation: UInt64, key: RankKey) {
        self.incarnation = incarnation
        self.key = key
    }

    /// nil for bytes that are not a cursor this server made.
    init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount, bytes[0] == Self.format,
            let key = RankKey(bytes: bytes[9...])
        else { return nil }
        self.incarnation = bytes[1..<9].reduce(0) { $0 << 8 | UInt64($1) }
        self.key = key
    }
}
