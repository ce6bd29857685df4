import HiscoreWire
import NIOCore

/// Counters and latency histograms of one event loop. Only that loop writes them (plain integers:
/// no atomics, no locks on the hot path); a scrape reads them by hopping to the loop once, and the
/// loops' snapshots are merged then. Nothing here runs on a timer.
package final class LoopMetrics {
    /// Latency buckets: upper bounds in microseconds, powers of two from 1 µs to ~33 s.
    static let bucketBounds: [Int] = (0..<26).map { 1 << $0 }

    var calls = [Int](repeating: 0, count: MetricMethod.allCases.count)
    var statuses = [Int](repeating: 0, count: StatusCode.allCases.count)
    var latency = [[Int]](repeating: [Int](repeating: 0, count: bucketBounds.count + 1), count: MetricMethod.allCases.count)
    var latencySumMicros = [Int](repeating: 0, count: MetricMethod.allCases.count)
    package var bytesIn = 0
    package var bytesOut = 0
    var connectionsOpened = 0
    var connectionsClosed = 0
    var subscriptionsOpened = 0
    var subscriptionsClosed = 0
    var protocolFaults = 0
    /// Times a connection stopped reading because its submit batches in flight reached
    /// `ServerLimits.maxInflightBatchItems`.
    var batchItemHolds = 0
    /// Stream hubs on this loop: flushes that sent something, events sent, the hubs' own work in
    /// those flushes, and the flushes run with widened intervals (load shedding).
    var streamFlushes = 0
    var streamEvents = 0
    var streamFlushBusyMicros = 0
    var streamWidenedFlushes = 0

    /// Heavy-load summary: calls counted in the current one-second window.
    var windowStart = NIODeadline.now()
    var windowCalls = 0

    @inline(__always)
    package func record(_ method: MetricMethod, status: StatusCode, micros: Int) {
        calls[method.rawValue] += 1
        statuses[Int(status.rawValue)] += 1
        latencySumMicros[method.rawValue] += micros
        let bucket = micros <= 1 ? 0 : min(Self.bucketBounds.count, Int.bitWidth - (micros - 1).leadingZeroBitCount)
        latency[method.rawValue][bucket] += 1
        windowCalls += 1
    }

    func snapshot() -> MetricsSnapshot {
        MetricsSnapshot(
            calls: calls, statuses: statuses, latency: latency, latencySumMicros: latencySumMicros, bytesIn: bytesIn,
            bytesOut: bytesOut, connectionsOpened: connectionsOpened, connectionsClosed: connectionsClosed,
            subscriptionsOpened: subscriptionsOpened, subscriptionsClosed: subscriptionsClosed, protocolFaults: protocolFaults,
            batchItemHolds: batchItemHolds, streamFlushes: streamFlushes, streamEvents: streamEvents, streamFlushBusyMicros: streamFlushBusyMicros,
            streamWidenedFlushes: streamWidenedFlushes)
    }
}

/// The method label of a call, as exported.
package enum MetricMethod: Int, CaseIterable, Sendable {
    case submit, submitBatch, getRank, top, around, entries, count, createBoard, describeBoard, listBoards
    case deleteBoard, removePlayer, subscribe, cancel, ping, authenticate, backup, resetBoard, erasePlayer, unknown

    init(_ method: RequestMethod?) {
        switch method {
        case .submit: self = .submit
        case .submitBatch: self = .submitBatch
        case .getRank: self = .getRank
        case .top: self = .top
        case .around: self = .around
        case .entries: self = .entries
        case .count: self = .count
        case .createBoard: self = .createBoard
        case .describeBoard: self = .describeBoard
        case .listBoards: self = .listBoards
        case .deleteBoard: self = .deleteBoard
        case .removePlayer: self = .removePlayer
        case .subscribe: self = .subscribe
        case .cancel: self = .cancel
        case .ping: self = .ping
        case .authenticate: self = .authenticate
        case .backup: self = .backup
        case .resetBoard: self = .resetBoard
        case .erasePlayer: self = .erasePlayer
        case nil: self = .unknown
        }
    }

    var label: String {
        switch self {
        case .submit: "submit"
        case .submitBatch: "submit_batch"
        case .getRank: "get_rank"
        case .top: "top"
        case .around: "around"
        case .entries: "entries"
        case .count: "count"
        case .createBoard: "create_board"
        case .describeBoard: "describe_board"
        case .listBoards: "list_boards"
        case .deleteBoard: "delete_board"
        case .removePlayer: "remove_player"
        case .subscribe: "subscribe"
        case .cancel: "cancel"
        case .ping: "ping"
        case .authenticate: "authenticate"
        case .backup: "backup"
        case .resetBoard: "reset_board"
        case .erasePlayer: "erase_player"
        case .unknown: "unknown"
        }
    }
}

/// A loop's metrics at one moment; snapshots of all loops add up.
struct MetricsSnapshot: Sendable {
    var calls: [Int]
    var statuses: [Int]
    var latency: [[Int]]
    var latencySumMicros: [Int]
    var bytesIn: Int
    var bytesOut: Int
    var connectionsOpened: Int
    var connectionsClosed: Int
    var subscriptionsOpened: Int
    var subscriptionsClosed: Int
    var protocolFaults: Int
    var batchItemHolds: Int
    var streamFlushes: Int
    var streamEvents: Int
    var streamFlushBusyMicros: Int
    var streamWidenedFlushes: Int

    static func + (a: MetricsSnapshot, b: MetricsSnapshot) -> MetricsSnapshot {
        func add(_ x: [Int], _ y: [Int]) -> [Int] { zip(x, y).map(+) }
        return MetricsSnapshot(
            calls: add(a.calls, b.calls), statuses: add(a.statuses, b.statuses),
            latency: zip(a.latency, b.latency).map(add), latencySumMicros: add(a.latencySumMicros, b.latencySumMicros),
            bytesIn: a.bytesIn + b.bytesIn, bytesOut: a.bytesOut + b.bytesOut,
            connectionsOpened: a.connectionsOpened + b.connectionsOpened,
            connectionsClosed: a.connectionsClosed + b.connectionsClosed,
            subscriptionsOpened: a.subscriptionsOpened + b.subscriptionsOpened,
            subscriptionsClosed: a.subscriptionsClosed + b.subscriptionsClosed,
            protocolFaults: a.protocolFaults + b.protocolFaults, batchItemHolds: a.batchItemHolds + b.batchItemHolds,
            streamFlushes: a.streamFlushes + b.streamFlushes, streamEvents: a.streamEvents + b.streamEvents,
            streamFlushBusyMicros: a.streamFlushBusyMicros + b.streamFlushBusyMicros,
            streamWidenedFlushes: a.streamWidenedFlushes + b.streamWidenedFlushes)
    }
}
