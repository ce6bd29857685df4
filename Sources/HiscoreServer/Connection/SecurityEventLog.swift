import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Security-relevant connection events in the server's log: a connection closed for repeated
/// failed authentications (someone guessing keys). At most one line a minute for the whole
/// server, counting the events it did not print: a guesser opening connection after connection
/// must not fill the log, nor cost a line per connection on the loops.
final class SecurityEventLog: Sendable {
    static let interval = TimeAmount.seconds(60)

    private let logger: Logger
    private let state = NIOLockedValueBox<(lastLogged: NIODeadline?, unlogged: Int)>((nil, 0))

    init(logger: Logger) {
        self.logger = logger
    }

    func closedForFailedAuthentications(peer: SocketAddress?, failures: Int) {
        let now = NIODeadline.now()
        let unlogged: Int? = state.withLockedValue { state in
            if let last = state.lastLogged, now - last < Self.interval {
                state.unlogged += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.unlogged
        }
        guard let unlogged else { return }
        let from = peer.flatMap { address in address.ipAddress.map { " from \($0):\(address.port ?? 0)" } } ?? ""
        let more = unlogged > 0 ? " (and \(unlogged) more such \(unlogged == 1 ? "connection" : "connections") since the last warning)" : ""
        logger.warning(
            "a connection\(from) was closed after \(failures) failed authentications in a row (max_failed_authentications)\(more)")
    }
}
