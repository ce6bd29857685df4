import Histogram

// `hiscore-bench streams`: event delay from board versions and ack times.
//
// The protocol carries no write id in events, but on a `set` board every accepted write changes
// the board, so the board version counts accepted writes exactly: with V0 the version when the
// write phase starts (nothing else writes meanwhile), the k-th accepted write of the phase brings
// the board to version V0 + k. The writers record the time of every successful acknowledgement;
// merged and sorted, the k-th of them stands for "the write that brought the board to V0 + k".
// (Acks of different connections can arrive in a slightly different order than the server applied
// the writes; the error is the ack-path jitter, far below a millisecond here.)
//
// For an event carrying version V0 + k that arrived at time t:
//   latest delay = t - ack(k): from the acknowledgement of the newest write the event reflects
//                  to the event's arrival (what the brief asks for; the coalescing wait of that
//                  write is near zero by construction, so this is the pipeline cost: flush,
//                  encode, send, read).
//   oldest delay = t - ack(p + 1), p = the version of the stream's previous event: from the
//                  acknowledgement of the first write after the previous event (the write that
//                  waited longest for this event) to its arrival. When that write affects the
//                  subscriber (on a large board, almost every write affects a player's rank), this
//                  is how long the subscriber's view was stale: compare with "interval + 50 ms".
// An event can arrive before the ack of its write (different connections and loops); such delays
// count as 0 and are counted in `negative`.

struct StreamDelayStats {
    var latest: Histogram<UInt64>
    var oldest: Histogram<UInt64>
    /// Events that arrived before that ack: by how much (microseconds).
    var ahead: Histogram<UInt64>
    var events = 0
    var negative = 0
    /// Events whose version is above the number of acks seen (the ack never arrived).
    var unmatched = 0

    init() {
        latest = Self.microsecondHistogram()
        oldest = latest
        ahead = latest
    }

    /// An empty histogram of microseconds (1 µs to 10 min, growing if needed).
    static func microsecondHistogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    /// "p50 X p99 Y max Z" in milliseconds.
    static func summary(_ histogram: Histogram<UInt64>) -> String {
        "p50 " + serverFormat(ms(histogram.valueAtPercentile(50)), 1) + " p99 "
            + serverFormat(ms(histogram.valueAtPercentile(99)), 1) + " max " + serverFormat(ms(histogram.max), 1)
    }

    mutating func add(_ records: [StreamEventRecord], acks: [UInt64]) {
        for record in records {
            let k = Int(record.version)
            guard k >= 1, k <= acks.count else {
                unmatched += 1
                continue
            }
            events += 1
            let ack = acks[k - 1]
            if record.arrivalNanos >= ack {
                _ = latest.record((record.arrivalNanos - ack) / 1000)
            } else {
                negative += 1
                _ = latest.record(0)
                _ = ahead.record((ack - record.arrivalNanos) / 1000)
            }
            let first = min(Int(record.previous) + 1, k)
            let firstAck = acks[first - 1]
            _ = oldest.record(record.arrivalNanos >= firstAck ? (record.arrivalNanos - firstAck) / 1000 : 0)
        }
    }

    mutating func merge(_ other: StreamDelayStats) {
        latest.add(other.latest)
        oldest.add(other.oldest)
        ahead.add(other.ahead)
        events += other.events
        negative += other.negative
        unmatched += other.unmatched
    }

    /// Milliseconds, 1 decimal.
    static func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
}

/// Top-N staleness measured from the write that changed the window. The "oldest" delay above
/// assumes the first write after a stream's previous event affects it, which holds for a player
/// on a large board (almost every write moves it) but not for a top 10 (on 1M players, about one
/// write in 100,000 enters it), where it would count the wait for an unrelated write. Here each
/// top event is matched with the writes it reports: an entry that entered or moved, whose
/// (player, score) a write of this phase set after the stream's previous event, or an entry that
/// left, whose player a write of the phase set (lower) after that event. The time since the
/// oldest of those writes was acknowledged is an upper bound of the event's staleness: a matched
/// write may not have changed the window itself (on 1M players with scores in [0, 1M) the top
/// scores tie, and a player written with the 10th score lands 11th, then enters when someone
/// leaves). The time since the newest matched write is a lower bound (two window changes inside
/// one interval arrive together). Both are reported.
struct WindowStalenessStats {
    /// Since the oldest matched write: the upper bound.
    var oldest = StreamDelayStats.microsecondHistogram()
    /// Since the newest matched write: the lower bound.
    var newest = StreamDelayStats.microsecondHistogram()
    var events = 0
    /// Events none of whose changes matched a write of the phase after the previous event.
    var unattributed = 0

    private struct WriteKey: Hashable {
        var player: Int32
        var score: Int64
    }

    /// `writes` sorted by ack time: the k-th stands for board version V0 + k (see above).
    mutating func add(_ changes: [TopChangeRecord], writes: [AckedWrite]) {
        var versions: [WriteKey: [Int]] = [:]
        var versionsByPlayer: [Int32: [Int]] = [:]
        for (index, write) in writes.enumerated() {
            versions[WriteKey(player: write.player, score: write.score), default: []].append(index + 1)
            versionsByPlayer[write.player, default: []].append(index + 1)
        }
        for change in changes {
            let version = Int(change.record.version)
            let previous = Int(change.record.previous)
            var oldest: UInt64?
            var latest: UInt64?
            for (player, score) in change.changed {
                let candidates: [Int]?
                if let score { candidates = versions[WriteKey(player: player, score: score)] } else { candidates = versionsByPlayer[player] }
                guard let k = candidates?.last(where: { $0 > previous && $0 <= version }) else { continue }
                let ack = writes[k - 1].ackNanos
                let delay = change.record.arrivalNanos >= ack ? (change.record.arrivalNanos - ack) / 1000 : 0
                oldest = max(oldest ?? 0, delay)
                latest = min(latest ?? .max, delay)
            }
            if let oldest, let latest {
                events += 1
                _ = self.oldest.record(max(oldest, 1))
                _ = newest.record(max(latest, 1))
            } else {
                unattributed += 1
            }
        }
    }
}
