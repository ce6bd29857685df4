import HiscoreWire

extension SubscriptionTarget {
    /// Entries in the window a stream of this target keeps and sends (the last one it sent, to
    /// send changes against it): what the answer bound and `max_stream_window_bytes` count. A
    /// feed keeps no window (its backlog has its own bound).
    var windowEntries: Int {
        switch self {
        case .player: 1
        case .top(let limit): Int(limit)
        case .around(_, let before, let after): Int(before) + Int(after) + 1
        case .feed: 0
        }
    }
}
