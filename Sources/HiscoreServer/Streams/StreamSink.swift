import Atomics
import HiscoreWire
import NIOCore

/// The connection end of a set of subscriptions: hubs on other event loops hand it frames, and
/// it writes them on the connection's own loop. It also tells hubs whether the socket can take
/// more right now: when it cannot, hubs send nothing and remember that the subscriber needs a
/// fresh snapshot, so a slow reader costs a flag, never a queue.
final class StreamSink: Sendable {
    let connectionID: UInt64
    let loop: any EventLoop
    private let writable = ManagedAtomic<Bool>(true)
    private let open = ManagedAtomic<Bool>(true)
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

    /// Writes stream frames (events, or final statuses that end streams) in one loop hop.
    func send(_ frames: [StreamFrame]) {
        guard isOpen, !frames.isEmpty else { return }
        let handler = self.handler
        loop.execute { handler.value.deliverStreamFrames(frames) }
    }
}

/// One frame for one subscription call.
struct StreamFrame: Sendable {
    let callID: UInt64
    let response: ResponseEnvelope
    /// True for the final status frame: the connection forgets the subscription.
    let isFinal: Bool
}
