import NIOCore

/// The first bytes a client sends: the magic "HISCORE" and a protocol version byte.
public enum ConnectionPreface {
    public static let magic: [UInt8] = Array("HISCORE".utf8)
    public static let protocolVersion: UInt32 = 1
    public static let bytes: [UInt8] = magic + [UInt8(protocolVersion)]
    public static var length: Int { bytes.count }

    /// What the bytes received so far say about the preface.
    public enum Check: Equatable, Sendable {
        /// Consistent with a preface so far; wait for more.
        case needMoreData
        /// The first `ConnectionPreface.length` bytes are a preface this server speaks.
        case accepted
        case rejected(Rejection)
    }

    public enum Rejection: Equatable, Sendable, CustomStringConvertible {
        /// Not a Hiscore client (an HTTP request, TLS hello, random bytes, ...).
        case wrongMagic
        /// A Hiscore client speaking another protocol version.
        case unsupportedProtocolVersion(UInt8)

        public var description: String {
            switch self {
            case .wrongMagic:
                "not a Hiscore connection preface (expected \"HISCORE\" and a version byte)"
            case .unsupportedProtocolVersion(let version):
                "unsupported protocol version \(version) (this server speaks \(ConnectionPreface.protocolVersion))"
            }
        }
    }

    /// Checks the first bytes of a connection. A wrong magic is reported as soon as the first
    /// differing byte arrives, so a stray HTTP client is answered without waiting for 8 bytes.
    public static func check<Bytes: Collection<UInt8>>(_ received: Bytes) -> Check {
        var index = received.startIndex
        for expected in magic {
            guard index != received.endIndex else { return .needMoreData }
            guard received[index] == expected else { return .rejected(.wrongMagic) }
            index = received.index(after: index)
        }
        guard index != received.endIndex else { return .needMoreData }
        let version = received[index]
        guard UInt32(version) == protocolVersion else { return .rejected(.unsupportedProtocolVersion(version)) }
        return .accepted
    }

    /// Checks the readable bytes of `buffer` without consuming them.
    public static func check(_ buffer: ByteBuffer) -> Check {
        buffer.withUnsafeReadableBytes { check($0) }
    }
}
