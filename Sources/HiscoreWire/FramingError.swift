/// Why the byte stream of a connection cannot be split into frames. Each is fatal for the
/// connection: the server answers with a connection-level error frame where it can, then closes.
public enum FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The flag byte had the compressed bit (or any other bit) set; compression is never
    /// negotiated by protocol version 1.
    case compressedFrameNotSupported(flags: UInt8)
    /// The header declared a body longer than the negotiated maximum (RESOURCE_EXHAUSTED).
    case frameTooLarge(declared: UInt32, max: Int)
    /// The stream ended inside a frame.
    case truncatedFrame(bufferedBytes: Int)

    public var description: String {
        switch self {
        case .compressedFrameNotSupported(let flags) where flags == UInt8(ascii: "H"):
            // What a client reads first from an HTTP server: "HTTP/1.1 ...".
            "frame flag byte is \(flags) ('H'): the peer answers as an HTTP server does (hiscored's admin port?); compressed frames are not supported (it must be 0)"
        case .compressedFrameNotSupported(let flags) where flags == 0x15 || flags == 0x16:
            // A TLS record's first byte (alert, handshake): what a TLS server answers a plain
            // client's preface, or what a TLS client sends a plain server first.
            "frame flag byte is \(flags): that is a TLS record, so one side speaks TLS and the other does not (a hiscored started with --tls-cert wants TLS clients: hiscore --tls-ca, ClientTLS, ssl=, hiscore_connect_tls)"
        case .compressedFrameNotSupported(let flags):
            "frame flag byte is \(flags); compressed frames are not supported (it must be 0)"
        case .frameTooLarge(let declared, let max):
            "frame of \(declared) bytes exceeds the maximum of \(max) bytes"
        case .truncatedFrame(let bufferedBytes):
            "connection closed in the middle of a frame (\(bufferedBytes) bytes buffered)"
        }
    }

    /// The status to report to the peer before closing.
    public var status: Status {
        switch self {
        case .frameTooLarge: Status(.resourceExhausted, description)
        case .compressedFrameNotSupported, .truncatedFrame: Status(.invalidArgument, description)
        }
    }
}
