import NIOCore

/// Writes frames: flag byte 0, the body length as 4 bytes big-endian, then the body.
public enum FrameEncoding {
    /// Writes a frame whose body `body` appends to the buffer in place: the length is
    /// back-patched afterwards, so the body is never copied.
    public static func writeFrame(into buffer: inout ByteBuffer, body: (inout ByteBuffer) -> Void) {
        let headerIndex = buffer.writerIndex
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(0))  // placeholder for the length
        body(&buffer)
        let bodyLength = buffer.writerIndex - headerIndex - FrameParser.headerLength
        // Bodies are bounded by the negotiated frame size (a few MiB), far below 4 GiB.
        precondition(bodyLength <= Int(UInt32.max), "frame body of \(bodyLength) bytes cannot be framed")
        buffer.setInteger(UInt32(bodyLength), at: headerIndex + 1)
    }

    /// Appends `envelope` as one frame.
    public static func encodeResponseFrame(
        _ envelope: ResponseEnvelope, into buffer: inout ByteBuffer, arena: WireArena = .forCurrentThread
    ) {
        writeFrame(into: &buffer) { body in WireCodec.encodeResponse(envelope, into: &body, arena: arena) }
    }

    /// Appends `envelope` as one frame.
    public static func encodeRequestFrame(
        _ envelope: RequestEnvelope, into buffer: inout ByteBuffer, arena: WireArena = .forCurrentThread
    ) {
        writeFrame(into: &buffer) { body in WireCodec.encodeRequest(envelope, into: &body, arena: arena) }
    }
}
