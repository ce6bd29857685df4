import HiscoreCore

/// Where a set of writes moved players' keys, kept so that the change in any other key's rank
/// follows from two binary searches instead of a count on every shard.
///
/// Why it works: the ordinal rank of a key K is 1 + the number of entries with a key better
/// (smaller) than K. A write moving a player from key A to key B (A absent for a new player, B
/// absent for a removal) changes that number by [B < K] - [A < K]. Over any set of writes the
/// changes add up, and a player written twice telescopes: A→B then B→C counts [C < K] - [A < K].
/// So for the writes in the set, rank change(K) = #{new keys < K} - #{old keys < K}, provided K's
/// own player is not among them (its key moved; the hub asks the shards for those).
///
/// Cost: O(w log w) to build from w writes, O(log w) per key asked.
struct KeyMoves {
    private var previousKeys: [RankKey] = []
    private var currentKeys: [RankKey] = []

    init() {}

    mutating func add(previous: RankKey?, current: RankKey?) {
        if let previous { previousKeys.append(previous) }
        if let current { currentKeys.append(current) }
    }

    var isEmpty: Bool { previousKeys.isEmpty && currentKeys.isEmpty }

    /// Sorts the keys; call once after the last `add`, before `shift`.
    mutating func seal() {
        previousKeys.sort()
        currentKeys.sort()
    }

    /// How many places better keys increased by, for an entry at `key` that did not move itself.
    func shift(at key: RankKey) -> Int {
        Self.countLess(than: key, in: currentKeys) - Self.countLess(than: key, in: previousKeys)
    }

    private static func countLess(than key: RankKey, in sorted: [RankKey]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// Which write notes a refresh's counts already reflect: for each shard, the number of the last
/// note it had made when it counted (notes are numbered per shard, see `Shard.noteSequence`).
/// A subscriber whose rank came from that refresh must not apply those notes again.
final class StreamCut {
    /// Indexed by shard; 0 = no note from that shard is reflected.
    let sequences: [UInt64]

    init(sequences: [UInt64]) {
        self.sequences = sequences
    }

    func reflects(_ note: WriteNote) -> Bool {
        note.shard < sequences.count && note.sequence <= sequences[note.shard]
    }

    /// Every note this cut reflects has reached the hub (per shard they arrive in order).
    func isCovered(byReceived received: [UInt64]) -> Bool {
        for (shard, sequence) in sequences.enumerated() where sequence > (shard < received.count ? received[shard] : 0) {
            return false
        }
        return true
    }
}
