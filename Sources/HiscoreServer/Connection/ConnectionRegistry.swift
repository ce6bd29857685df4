import NIOConcurrencyHelpers
import NIOCore

/// The open client connections: enforces `maxConnections` and lets shutdown reach each one.
final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox([ObjectIdentifier: any Channel]())
    let maxConnections: Int

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
    }

    /// Registers the channel, or returns false when the server is at its connection limit.
    func admit(_ channel: any Channel) -> Bool {
        let admitted = channels.withLockedValue { channels in
            guard channels.count < maxConnections else { return false }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { [self] _ in
                _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
            }
        }
        return admitted
    }

    var count: Int { channels.withLockedValue { $0.count } }
    var all: [any Channel] { channels.withLockedValue { Array($0.values) } }
}
