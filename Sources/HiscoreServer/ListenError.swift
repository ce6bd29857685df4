import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A port the server could not listen on, thrown by `HiscoreServer.start` after it has closed
/// what it had opened. Names which of its two ports failed: "address already in use" alone does
/// not say whether the call port or the admin port is taken.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    public enum Socket: String, Sendable {
        case calls = "the call port"
        case admin = "the admin HTTP port"
    }

    public var socket: Socket
    public var host: String
    public var port: Int
    /// The system's reason.
    public var reason: String

    public var description: String {
        // An IPv6 address in brackets, as clients' --addr takes it.
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "cannot listen on \(socket.rawValue) \(shownHost):\(port): \(reason)"
    }

    /// The system's reason for `error` in words ("address already in use"), without NIO's
    /// wrapping of the failed call.
    static func reason(_ error: any Error) -> String {
        guard let io = error as? IOError, let text = strerror(io.errnoCode) else { return "\(error)" }
        return String(cString: text).lowercased()
    }
}
