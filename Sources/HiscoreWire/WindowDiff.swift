/// The changes that turn one window (an ordered list of entries: a top N, or the players around
/// someone) into the next. A client holding the old window applies them in order — drop LEFT
/// players, put ENTERED and MOVED ones at their position — and holds exactly the new window:
/// every player whose position, rank, score, subscore or metadata changed is named with its
/// current entry, so unnamed players kept both their position and their entry.
public enum WindowDiff {
    public static func changes(from old: [WireEntry], to new: [WireEntry]) -> [WindowChange] {
        var oldPositions: [String: Int] = [:]
        for (position, entry) in old.enumerated() { oldPositions[entry.playerID] = position }
        var newPlayers = Set<String>()
        var changes: [WindowChange] = []
        for (position, entry) in new.enumerated() {
            newPlayers.insert(entry.playerID)
            guard let previousPosition = oldPositions[entry.playerID] else {
                changes.append(WindowChange(kind: .entered, entry: entry, position: UInt32(position), previousPosition: 0))
                continue
            }
            if previousPosition != position || old[previousPosition] != entry {
                changes.append(WindowChange(
                    kind: .moved, entry: entry, position: UInt32(position), previousPosition: UInt32(previousPosition)))
            }
        }
        for (position, entry) in old.enumerated() where !newPlayers.contains(entry.playerID) {
            var gone = entry
            gone.rank = 0
            changes.append(WindowChange(kind: .left, entry: gone, position: 0, previousPosition: UInt32(position)))
        }
        return changes
    }

    /// Applies `changes` to `window` the way a client does (the client libraries do this).
    public static func apply(_ changes: [WindowChange], to window: [WireEntry]) -> [WireEntry] {
        var byPlayer: [String: (position: Int, entry: WireEntry)] = [:]
        for (position, entry) in window.enumerated() { byPlayer[entry.playerID] = (position, entry) }
        for change in changes {
            switch change.kind {
            case .left: byPlayer[change.entry.playerID] = nil
            case .entered, .moved: byPlayer[change.entry.playerID] = (Int(change.position), change.entry)
            }
        }
        return byPlayer.values.sorted { $0.position < $1.position }.map(\.entry)
    }
}
