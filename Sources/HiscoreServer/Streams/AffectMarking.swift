import HiscoreCore

/// What the writes since a hub's last flush did, prepared once per flush so that marking each
/// subscription costs one binary search (the cost model is in `SubscriptionHub`'s notes):
///
/// * ordinal and competition player streams get their rank shift from `KeyMoves`, less the notes their last
///   query already counted (`StreamCut`); they become dirty only if the shift is not zero;
/// * every other stream is dirty iff a write's key interval meets the interval it watches: the
///   intervals sorted by their low end, with a running maximum of their high end, answer that.
///
/// Streams whose own player was written are marked by the hub before (they need a query).
final class AffectMarking {
    private let everything: Bool
    /// The writes' key intervals sorted by their low end, with the running maximum of their high
    /// end; built on first use (a board whose streams all follow the notes never needs them).
    private lazy var sortedIntervals: (intervals: [ClosedRange<RankKey>], runningMaxHigh: [RankKey]) = {
        var intervals = notes.map(\.touchedInterval)
        intervals.sort { $0.lowerBound < $1.lowerBound }
        var runningMaxHigh: [RankKey] = []
        runningMaxHigh.reserveCapacity(intervals.count)
        var highest = RankKey.min
        for interval in intervals {
            highest = max(highest, interval.upperBound)
            runningMaxHigh.append(highest)
        }
        return (intervals, runningMaxHigh)
    }()
    private let notes: [WriteNote]
    private let moves: KeyMoves
    private let received: [UInt64]
    /// Per cut seen in this flush: the moves of the notes that cut reflects (the cut is held, so
    /// its identifier cannot be reused by another cut while this marking lives).
    private var reflected: [ObjectIdentifier: (cut: StreamCut, moves: KeyMoves)] = [:]

    /// `everything`: the hub lost count of the writes (too many); every stream is recomputed.
    init(everything: Bool, notes: [WriteNote], received: [UInt64]) {
        self.everything = everything
        self.notes = notes
        self.received = received
        var moves = KeyMoves()
        for note in notes { moves.add(previous: note.previousKey, current: note.currentKey) }
        moves.seal()
        self.moves = moves
    }

    func mark(_ subscription: Subscription) {
        if everything {
            subscription.dirty = true
            subscription.needsQuery = true
            return
        }
        if subscription.followsNotes {
            shiftRank(of: subscription)
            if let cut = subscription.cut, cut.isCovered(byReceived: received) { subscription.cut = nil }
            return
        }
        guard !subscription.dirty else { return }
        let (intervals, runningMaxHigh) = sortedIntervals
        let watched = subscription.watched
        // Writes whose interval starts at or before the watched high end...
        var low = 0
        var high = intervals.count
        while low < high {
            let middle = (low + high) / 2
            if intervals[middle].lowerBound <= watched.upperBound { low = middle + 1 } else { high = middle }
        }
        // ...affect it iff one of them reaches the watched low end.
        if low > 0 && runningMaxHigh[low - 1] >= watched.lowerBound { subscription.dirty = true }
    }

    private func shiftRank(of subscription: Subscription) {
        guard !subscription.needsQuery, let better = subscription.betterCount, let key = subscription.countingKey else { return }
        var shift = moves.shift(at: key)
        if let cut = subscription.cut {
            let counted = alreadyCounted(cut)
            if !counted.isEmpty { shift -= counted.shift(at: key) }
        }
        if shift != 0 {
            subscription.betterCount = better + shift
            subscription.dirty = true
        }
    }

    private func alreadyCounted(_ cut: StreamCut) -> KeyMoves {
        if let known = reflected[ObjectIdentifier(cut)] { return known.moves }
        var counted = KeyMoves()
        for note in notes where cut.reflects(note) { counted.add(previous: note.previousKey, current: note.currentKey) }
        counted.seal()
        reflected[ObjectIdentifier(cut)] = (cut, counted)
        return counted
    }
}
