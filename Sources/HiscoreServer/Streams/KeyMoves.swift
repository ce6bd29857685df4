import HiscoreCore

/// Where a set of writes moved players' keys, kept so that the change in any other key's rank
/// follows from one binary search instead of a count on every shard.
///
/// Why it works: the ordinal rank of a key K is 1 + the number of entries with a key better
/// (smaller) than K. A write moving a player from key A to key B (A absent for a new player, B
/// absent for a removal) changes that number by [B < K] - [A < K]. Over any set of writes the
/// changes add up, and a player written twice telescopes: A→B then B→C counts [C < K] - [A < K].
/// So for the writes in the set, rank change(K) = #{new keys < K} - #{old keys < K}, provided K's
/// own player is not among them (its key moved; the hub asks the shards for those).
///
/// Both ends of every move go into one array sorted by key, each weighing +1 (a new key) or -1 (an
/// old key), with running sums: the shift at K is the running sum before the first key >= K.
///
/// Cost: O(w log w) to build from w writes, one binary search over 2w keys per key asked.
struct KeyMoves {
    private var moves: [(key: RankKey, weight: Int32)] = []
    private var keys: [RankKey] = []
    /// prefixSums[i] = sum of the weights of keys[0..<i].
    private var prefixSums: [Int32] = []

    init() {}

    mutating func add(previous: RankKey?, current: RankKey?) {
        if let previous { moves.append((previous, -1)) }
        if let current { moves.append((current, 1)) }
    }

    var isEmpty: Bool { moves.isEmpty && keys.isEmpty }

    /// Sorts the keys and sums the weights; call once after the last `add`, before `shift`.
    mutating func seal() {
        moves.sort { $0.key < $1.key }
        keys = moves.map(\.key)
        prefixSums.reserveCapacity(moves.count + 1)
        var sum: Int32 = 0
        prefixSums.append(0)
        for move in moves {
            sum += move.weight
            prefixSums.append(sum)
        }
        moves = []
    }

    /// How many places better keys increased by, for an entry at `key` that did not move itself.
    func shift(at key: RankKey) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] < key { low = middle + 1 } else { high = middle }
        }
        return Int(prefixSums[low])
    }
}
