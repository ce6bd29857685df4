import HiscoreWire
import NIOCore

/// What a connection's byte stream decodes to: first the preface, then frames.
enum ServerInbound {
    case preface
    case frame(ByteBuffer)
}

/// Errors that end a connection before or between frames.
enum ConnectionFault: Error {
    case badPreface(String)
}

/// The first 8 bytes must be the preface; after it, gRPC Length-Prefixed-Messages. Both stages
/// live in one decoder so no byte can slip past the preface check, and the frame stage never
/// buffers more than one maximal frame (the wrapped decoder refuses a larger declared length
/// as soon as the 5-byte header arrives). `InboundFrames` feeds it a connection's bytes; what
/// is left at EOF is an incomplete message, dropped with the connection.
struct ServerInboundDecoder {
    private var prefaceSeen = false
    private var frames: LengthPrefixedFrameDecoder

    init(maxFrameBytes: Int) {
        self.frames = LengthPrefixedFrameDecoder(maxFrameBytes: maxFrameBytes)
    }

    /// Past the preface: the bytes are frames.
    var readsFrames: Bool { prefaceSeen }

    mutating func decode(buffer: inout ByteBuffer) throws -> ServerInbound? {
        if prefaceSeen {
            return try frames.decode(buffer: &buffer).map(ServerInbound.frame)
        }
        let available = buffer.readableBytesView.prefix(ConnectionPreface.bytes.count)
        switch ConnectionPreface.check(available) {
        case .needMoreData:
            return nil
        case .accepted:
            buffer.moveReaderIndex(forwardBy: ConnectionPreface.bytes.count)
            prefaceSeen = true
            return .preface
        case .rejected(let reason):
            throw ConnectionFault.badPreface("\(reason)")
        }
    }
}
