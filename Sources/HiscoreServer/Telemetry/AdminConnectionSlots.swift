import NIOConcurrencyHelpers
import NIOCore

/// The admin port's connection slots (`AdminHTTPServer.maxConnections`). When they are all
/// taken, a new connection takes the slot of the oldest one that is not being answered — one
/// waiting for a request, or still sending it — instead of being turned away: otherwise 64
/// connections that say nothing, renewed as the request timeout closes them, keep the health
/// checks out for good, and an orchestrator restarts a healthy server. A connection being
/// answered keeps its slot; with all 64 being answered, the new one is closed.
final class AdminConnectionSlots: Sendable {
    /// One connection's slot; `answering` is kept by its `AdminRequestDeadline`.
    final class Slot: Sendable {
        let channel: any Channel
        private let answeringBox = NIOLockedValueBox(false)

        init(channel: any Channel) { self.channel = channel }

        var answering: Bool {
            get { answeringBox.withLockedValue { $0 } }
            set { answeringBox.withLockedValue { $0 = newValue } }
        }
    }

    private let capacity: Int
    /// Open connections, oldest first.
    private let open = NIOLockedValueBox<[Slot]>([])

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { open.withLockedValue { $0.count } }

    /// A slot for `channel` (taking an idle connection's when full, which is closed), or nil
    /// when every slot's connection is being answered. The slot frees itself when its channel closes.
    func admit(_ channel: any Channel) -> Slot? {
        let slot = Slot(channel: channel)
        let (admitted, evicted): (Bool, Slot?) = open.withLockedValue { slots in
            guard slots.count >= capacity else {
                slots.append(slot)
                return (true, nil)
            }
            guard let index = slots.firstIndex(where: { !$0.answering }) else { return (false, nil) }
            let evicted = slots.remove(at: index)
            slots.append(slot)
            return (true, evicted)
        }
        evicted?.channel.close(promise: nil)
        guard admitted else { return nil }
        channel.closeFuture.whenComplete { [open] _ in
            open.withLockedValue { slots in slots.removeAll { $0 === slot } }
        }
        return slot
    }
}
