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

    public var description: String { "cannot listen on \(socket.rawValue) \(host):\(port): \(reason)" }
}
