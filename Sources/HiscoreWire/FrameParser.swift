/// The gRPC Length-Prefixed-Message header, without NIO: 1 flag byte (must be 0), then the body
/// length as a 4-byte big-endian integer. Shared by `LengthPrefixedFrameDecoder` and by tests and
/// fuzzers that work on plain byte arrays.
public enum FrameParser {
    public static let headerLength = 5

    /// What the bytes at the start of a stream hold.
    public enum Step: Equatable, Sendable {
        /// Not a whole frame yet.
        case needMoreData
        /// A whole frame: its body is `bytes[bodyRange]`; the frame ends at `bodyRange.upperBound`.
        case frame(bodyRange: Range<Int>)
    }

    /// Validates the two fields of a frame header and returns the body length.
    public static func bodyLength(
        flags: UInt8, declaredLength: UInt32, maxFrameBytes: Int
    ) throws(FramingError) -> Int {
        guard flags == 0 else { throw .compressedFrameNotSupported(flags: flags) }
        guard Int(declaredLength) <= maxFrameBytes else {
            throw .frameTooLarge(declared: declaredLength, max: maxFrameBytes)
        }
        return Int(declaredLength)
    }

    /// Looks for the first frame in `bytes`. The header is checked as soon as its 5 bytes are
    /// there, before the body arrives, so an oversized frame is refused without buffering it.
    public static func firstFrame(
        in bytes: UnsafeRawBufferPointer, maxFrameBytes: Int
    ) throws(FramingError) -> Step {
        guard bytes.count >= headerLength else { return .needMoreData }
        let declaredLength =
            UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])
        let length = try bodyLength(flags: bytes[0], declaredLength: declaredLength, maxFrameBytes: maxFrameBytes)
        guard bytes.count - headerLength >= length else { return .needMoreData }
        return .frame(bodyRange: headerLength..<(headerLength + length))
    }

    /// Splits `bytes` into whole frame bodies; `remainder` is the start of an incomplete frame.
    public static func frames(
        in bytes: [UInt8], maxFrameBytes: Int
    ) throws(FramingError) -> (bodies: [[UInt8]], remainder: [UInt8]) {
        var bodies: [[UInt8]] = []
        var start = 0
        while true {
            let step = try bytes.withUnsafeBytes { all in
                Result { () throws(FramingError) in
                    try firstFrame(in: UnsafeRawBufferPointer(rebasing: all[start...]), maxFrameBytes: maxFrameBytes)
                }
            }.get()
            guard case .frame(let bodyRange) = step else { break }
            bodies.append(Array(bytes[(start + bodyRange.lowerBound)..<(start + bodyRange.upperBound)]))
            start += bodyRange.upperBound
        }
        return (bodies, Array(bytes[start...]))
    }
}
