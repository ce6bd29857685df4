import HiscoreCore
import NIOConcurrencyHelpers

/// Where a board's recently asked offset pages began: for each of a few offsets, the key of the
/// entry that stood first on that page when it was last answered.
///
/// An offset page over S shards otherwise places its key windows by rank and proves the page
/// before fetching it: two trips to every shard and ~S x 170 keys read at rank 5000 over two
/// (`PartitionMerge.planPageWindows`). Clients page the same offsets over and over (page 2 of
/// the global board, a lobby's "ranks 100-150"), and between two such calls the page's first
/// entry rarely moves more than a few places: a run of entries fetched around the last first key
/// (`PartitionMerge.anchoredRun`) proves the page in one trip. An anchor is only a hint: the
/// proof decides, and a page it cannot prove takes the windowed path and records its new first
/// key. Nothing here needs to be invalidated: a stale key costs one unproven trip.
///
/// Size: `slots` (offset, key) pairs per board, indexed by offset; a colliding offset replaces
/// the older one. One short lock per page call (~20 ns uncontended, next to ~10 µs per page).
final class PageAnchors: Sendable {
    /// Distinct offsets remembered per board.
    static let slots = 8

    private struct Anchor {
        var offset: Int
        var key: RankKey
    }

    private let anchors = NIOLockedValueBox([Anchor?](repeating: nil, count: PageAnchors.slots))

    @inline(__always)
    private static func slot(_ offset: Int) -> Int {
        Int(truncatingIfNeeded: ((UInt64(truncatingIfNeeded: offset) &* 0x9E37_79B9_7F4A_7C15) >> 32) % UInt64(slots))
    }

    /// The first key of the page at `offset` when it was last answered, if remembered.
    func key(offset: Int) -> RankKey? {
        anchors.withLockedValue { anchors in
            guard let anchor = anchors[Self.slot(offset)], anchor.offset == offset else { return nil }
            return anchor.key
        }
    }

    /// Remembers `key` as the first key of the page at `offset`.
    func record(offset: Int, key: RankKey) {
        anchors.withLockedValue { anchors in
            let slot = Self.slot(offset)
            if let anchor = anchors[slot], anchor.offset == offset, anchor.key == key { return }
            anchors[slot] = Anchor(offset: offset, key: key)
        }
    }
}
