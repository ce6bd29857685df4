import Atomics
import HiscoreWire
import NIOCore

/// The connection end of a set of subscriptions: hubs on other event loops hand it frames, and
/// it writes them on the connection's own loop. It also tells hubs whether the socket can take
/// more right now: when it cannot, hubs send nothing and remember that the subscriber needs a
/// fresh snapshot, so a slow reader costs a flag, never a queue.
///
/// The event budget: a hub knows the socket's writability only as of its flush, and the hubs of
/// a connection's boards flush on their own loops, so each could hand over a window's worth of
/// events before the connection's loop writes any of them and finds the socket full. Every
/// player and window event therefore takes its estimated bytes from the connection's budget
/// (`reserve`) before it is handed over, and gives them back once the connection's loop has
/// written it to the channel (`release`; from there the channel's writability bounds it). A
/// stream refused is left for a snapshot, like one whose socket is full, and the release that
/// frees the budget resumes the connection's streams. So at most `maxPendingEventBytes` (plus
/// one event: the first always goes) wait in the hand-over, whatever the number of boards.
final class StreamSink: Sendable {
    /// Player and window event bytes (ids and metadata counted, as `StreamRefresh` estimates
    /// them) handed to a connection's loop and not yet written to its channel, over all boards.
    static let maxPendingEventBytes = 4 << 20

    let connectionID: UInt64
    let loop: any EventLoop
    private let writable = ManagedAtomic<Bool>(true)
    private let open = ManagedAtomic<Bool>(true)
    private let pendingEventBytes = ManagedAtomic<Int>(0)
    /// A reservation was refused since the last release looked: the next release resumes.
    private let refused = ManagedAtomic<Bool>(false)
    private let handler: NIOLoopBound<CallHandler>

    init(connectionID: UInt64, loop: any EventLoop, handler: NIOLoopBound<CallHandler>) {
        self.connectionID = connectionID
        self.loop = loop
        self.handler = handler
    }

    var isWritable: Bool { writable.load(ordering: .relaxed) && open.load(ordering: .relaxed) }
    var isOpen: Bool { open.load(ordering: .relaxed) }

    func setWritable(_ value: Bool) { writable.store(value, ordering: .relaxed) }
    func markClosed() { open.store(false, ordering: .relaxed) }

    /// Takes `bytes` of the event budget for an event about to be handed over; false when events
    /// handed over and not yet written hold it. An event always fits an empty budget, however
    /// large. Any thread.
    func reserve(_ bytes: Int) -> Bool {
        if tryReserve(bytes) { return true }
        // Flag first, then look again: a release between the failed try and the flag has
        // lowered the count by then, and a later one sees the flag. No refused stream is left
        // without a resume.
        refused.store(true, ordering: .sequentiallyConsistent)
        return tryReserve(bytes)
    }

    private func tryReserve(_ bytes: Int) -> Bool {
        var current = pendingEventBytes.load(ordering: .sequentiallyConsistent)
        while current == 0 || current + bytes <= Self.maxPendingEventBytes {
            let (exchanged, original) = pendingEventBytes.compareExchange(
                expected: current, desired: current + bytes, ordering: .sequentiallyConsistent)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back what `reserve` took for events now written to the channel (or dropped); true
    /// when a reservation was refused meanwhile, so the connection's streams should resume.
    func release(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return false }
        let left = pendingEventBytes.wrappingDecrementThenLoad(by: bytes, ordering: .sequentiallyConsistent)
        assert(left >= 0, "released more stream event bytes than were reserved")
        return refused.exchange(false, ordering: .sequentiallyConsistent)
    }

    /// Its flags and budget, for failure messages in tests.
    var diagnosis: String {
        "sink of connection \(connectionID): writable \(writable.load(ordering: .relaxed)) open \(isOpen) "
            + "pending event bytes \(pendingEventBytes.load(ordering: .relaxed)) refused \(refused.load(ordering: .relaxed))"
    }

    /// Writes stream frames (events, or final statuses that end streams) in one loop hop, and
    /// then gives back `reservedBytes` of the event budget.
    func send(_ frames: [StreamFrame], reservedBytes: Int = 0) {
        guard isOpen, !frames.isEmpty else {
            _ = release(reservedBytes)  // a closed connection resumes nothing
            return
        }
        let handler = self.handler
        loop.execute { handler.value.deliverStreamFrames(frames, releasing: reservedBytes) }
    }
}

/// One frame for one subscription call.
struct StreamFrame: Sendable {
    let callID: UInt64
    let response: ResponseEnvelope
    /// True for the final status frame: the connection forgets the subscription.
    let isFinal: Bool
}
