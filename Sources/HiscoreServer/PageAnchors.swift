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
/// proof decides. A page the runs miss by a few hundred places is fetched again from where the
/// runs show it now stands (`PartitionMerge.rerunRanges`): two trips, as without an anchor. A
/// page that moved further (a board whose players climb past it by the thousand between two
/// calls), or that a rerun cannot prove either (shards holding different score ranges, whose
/// orders do not interleave as the rerun assumes), takes the windowed path after the wasted
/// trips, and its anchor is then skipped for 2, 4, … up to `maxSkippedCalls` calls while that
/// goes on, so such a board pays them on one call in 64 at most. A call whose runs reach the
/// page (at once or after a rerun) ends the run of misses.
///
/// Size: `slots` anchors per board (24-byte keys), found by scanning them all; a new offset
/// replaces one picked at random, so a client cycling through more offsets than there are slots
/// still finds some of them (replacing the least recently recorded would evict, every time, the
/// one it asks for next). One short lock per page call (~20 ns uncontended, next to ~10 µs per
/// page).
final class PageAnchors: Sendable {
    /// Distinct offsets remembered per board.
    static let slots = 16
    /// The longest run of calls an anchor is skipped for after the page moved beyond its reach.
    static let maxSkippedCalls = 64

    private struct Anchor {
        var offset: Int
        var key: RankKey
        /// Calls in a row that found the page beyond the anchor's reach.
        var farMisses = 0
        /// Calls still to skip the anchor for.
        var skipsLeft = 0
    }

    private struct State {
        var anchors: [Anchor] = []
        /// Picks the anchor a new offset replaces (xorshift; deterministic per board).
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
    }

    private let state = NIOLockedValueBox(State())

    /// The first key of the page at `offset` when it was last answered, if remembered and not
    /// being skipped (a skip is used up by this call).
    func key(offset: Int) -> RankKey? {
        state.withLockedValue { state in
            guard let index = state.anchors.firstIndex(where: { $0.offset == offset }) else { return nil }
            if state.anchors[index].skipsLeft > 0 {
                state.anchors[index].skipsLeft -= 1
                return nil
            }
            return state.anchors[index].key
        }
    }

    /// Remembers `key` as the first key of the page at `offset`; `anchorReached`: this call's
    /// anchor runs reached the page (at once or after a rerun), which ends a run of far misses.
    func record(offset: Int, key: RankKey, anchorReached: Bool) {
        state.withLockedValue { state in
            if let index = state.anchors.firstIndex(where: { $0.offset == offset }) {
                state.anchors[index].key = key
                if anchorReached { state.anchors[index].farMisses = 0 }
                return
            }
            let anchor = Anchor(offset: offset, key: key)
            if state.anchors.count < Self.slots {
                state.anchors.append(anchor)
                return
            }
            state.random ^= state.random << 13
            state.random ^= state.random >> 7
            state.random ^= state.random << 17
            state.anchors[Int(state.random % UInt64(Self.slots))] = anchor
        }
    }

    /// The anchor at `offset` left the page out of reach: skip it for the next 2, 4, … calls.
    func noteFarMiss(offset: Int) {
        state.withLockedValue { state in
            guard let index = state.anchors.firstIndex(where: { $0.offset == offset }) else { return }
            let misses = min(state.anchors[index].farMisses + 1, 6)
            state.anchors[index].farMisses = misses
            state.anchors[index].skipsLeft = min(1 << misses, Self.maxSkippedCalls)
        }
    }

    /// The offsets remembered (for tests).
    var offsets: Set<Int> { state.withLockedValue { Set($0.anchors.map(\.offset)) } }
}
