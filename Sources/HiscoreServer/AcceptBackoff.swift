import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What a listening socket does when `accept` fails for lack of a resource (the process's or the
/// system's file descriptors, kernel memory): it stops accepting for `pause` and logs why, at most
/// once a minute per listener. The listening socket stays readable while accept fails, so a loop
/// that retries at once spins at 100% CPU and serves nothing else (measured: ~3,700 failed
/// accepts a second). NIO's `AcceptBackoffHandler` does not stop that: it holds back the next
/// read, but the channel stays registered for readability when the failed accept was the first of
/// its read, so epoll reports the socket again at once. Turning `autoRead` off unregisters it;
/// it is turned on again when the pause ends. Connections past the limit wait in the listen
/// backlog meanwhile.
final class AcceptBackoff: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    static let pause = TimeAmount.seconds(1)
    static let logInterval = TimeAmount.seconds(60)

    private let socketName: String
    private let logger: Logger
    private let lastLogged = NIOLockedValueBox<NIODeadline?>(nil)
    private let suppressed = NIOLockedValueBox(0)

    init(socketName: String, logger: Logger) {
        self.socketName = socketName
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let io = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode),
            let options = context.channel.syncOptions
        else {
            context.fireErrorCaught(error)
            return
        }
        log(io)
        guard (try? options.getOption(.autoRead)) == true, (try? options.setOption(.autoRead, value: false)) != nil else { return }
        let channel = context.channel
        context.eventLoop.scheduleTask(in: Self.pause) {
            if channel.isActive { try? channel.syncOptions?.setOption(.autoRead, value: true) }
        }
    }

    private func log(_ error: IOError) {
        let now = NIODeadline.now()
        let due = lastLogged.withLockedValue { last -> Bool in
            guard last.map({ now - $0 >= Self.logInterval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else {
            suppressed.withLockedValue { $0 += 1 }
            return
        }
        let more = suppressed.withLockedValue { count -> Int in
            defer { count = 0 }
            return count
        }
        let limit = FileDescriptorLimit.current().map { " (open-file limit \($0.soft))" } ?? ""
        logger.warning(
            "\(socketName): cannot accept connections: \(Self.reason(error))\(limit); accepting again in 1 s\(more > 0 ? " (\(more) more since the last warning)" : "")")
    }

    static func reason(_ error: IOError) -> String {
        switch error.errnoCode {
        case EMFILE: "the process has no file descriptor left (raise its open-file limit, `ulimit -n` or systemd's LimitNOFILE, or lower --max-connections)"
        case ENFILE: "the system has no file descriptor left"
        default: "out of kernel memory (\(error))"
        }
    }
}
