import NIOCore

/// Splits a connection's inbound bytes into frame bodies (gRPC Length-Prefixed-Message framing).
///
/// It never buffers more than one frame: as soon as a 5-byte header is readable it checks the flag
/// byte and the declared length, and throws `FramingError` before waiting for the body. A
/// zero-length frame yields an empty buffer (an all-defaults protobuf message).
///
/// Use through `ByteToMessageHandler` or `NIOSingleStepByteToMessageProcessor`, or call
/// `decode(buffer:)` directly.
public struct LengthPrefixedFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The largest frame body accepted, in bytes.
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes >= 0, "maxFrameBytes must not be negative")
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard
            let flags = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let declaredLength = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        else { return nil }
        let length = try FrameParser.bodyLength(
            flags: flags, declaredLength: declaredLength, maxFrameBytes: maxFrameBytes)
        guard buffer.readableBytes - FrameParser.headerLength >= length else { return nil }
        buffer.moveReaderIndex(forwardBy: FrameParser.headerLength)
        return buffer.readSlice(length: length)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let frame = try decode(buffer: &buffer) { return frame }
        if seenEOF, buffer.readableBytes > 0 {
            throw FramingError.truncatedFrame(bufferedBytes: buffer.readableBytes)
        }
        return nil
    }
}
