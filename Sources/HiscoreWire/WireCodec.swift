import CProtobufC
import HiscoreProtoC
import NIOCore

/// Envelopes <-> protobuf bytes (without the 5-byte frame header; see `FrameEncoding` and
/// `LengthPrefixedFrameDecoder`). The only place above which nothing sees a protobuf-c struct.
///
/// Each call uses a `WireArena` for protobuf-c's C memory: the calling thread's by default, or the
/// one passed in. Decoding works on untrusted bytes: it never traps, and it bounds the memory
/// `unpack` may allocate to `decodeBudget(forInputBytes:)`.
public enum WireCodec {
    /// The most memory `unpack` may allocate for a payload of `inputBytes` bytes. Real messages
    /// expand under 10x (C structs are bigger than varints, and protobuf-c keeps ~32 bytes of
    /// scan state per field of a message with many fields); a payload of empty sub-messages
    /// expands ~80x, so it is refused instead of costing 80 times the frame limit.
    public static func decodeBudget(forInputBytes inputBytes: Int) -> Int {
        decodeBudgetBaseBytes + decodeBudgetBytesPerInputByte * inputBytes
    }

    /// What any payload may decode into, however small (the arena's first block).
    public static let decodeBudgetBaseBytes = 1 << 20
    /// What each payload byte may add to it (see `decodeBudget(forInputBytes:)`).
    public static let decodeBudgetBytesPerInputByte = 32

    // MARK: Requests

    /// Decodes a `Request` payload. A request naming no method (or one unknown to this version)
    /// has `method == nil`.
    public static func decodeRequest(
        _ bytes: UnsafeRawBufferPointer, limits: RequestListLimits = .unlimited, arena: WireArena = .forCurrentThread
    ) throws(WireError) -> RequestEnvelope {
        do throws(RejectedRequest) {
            return try decodeRequestRecoveringCallID(bytes, limits: limits, arena: arena)
        } catch {
            throw error.reason
        }
    }

    /// Decodes a `Request` payload; on failure, reports the call id too when it can be read (from
    /// the decoded envelope if only a field was invalid, else by `peekCallID`), so the server can
    /// answer INVALID_ARGUMENT on that call.
    public static func decodeRequestRecoveringCallID(
        _ bytes: UnsafeRawBufferPointer, limits: RequestListLimits = .unlimited, arena: WireArena = .forCurrentThread
    ) throws(RejectedRequest) -> RequestEnvelope {
        arena.reset()
        defer { arena.reset() }
        arena.decodeBudget = decodeBudget(forInputBytes: bytes.count)
        var allocator = arena.protobufAllocator
        let unpacked = withNonNullBytes(bytes) { data in
            hiscore__v1__request__unpack(&allocator, bytes.count, data)
        }
        guard let request = unpacked else {
            throw RejectedRequest(
                callID: peekCallID(bytes), reason: unpackFailure(arena: arena, messageName: "Request"))
        }
        // No `free_unpacked`: every block of the message is the arena's, freed by its reset (the
        // deferred one above); protobuf-c's free would walk the whole message to call a no-op.
        do throws(WireError) {
            return try RequestEnvelope(protoC: request.pointee, limits: limits)
        } catch {
            throw RejectedRequest(callID: request.pointee.call_id, reason: error)
        }
    }

    /// Decodes the readable bytes of `buffer` (without moving its reader index).
    public static func decodeRequest(
        _ buffer: ByteBuffer, limits: RequestListLimits = .unlimited, arena: WireArena = .forCurrentThread
    ) throws(WireError) -> RequestEnvelope {
        try buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(WireError) in try decodeRequest(bytes, limits: limits, arena: arena) }
        }.get()
    }

    /// Appends the protobuf encoding of `envelope` to `buffer`.
    public static func encodeRequest(
        _ envelope: RequestEnvelope, into buffer: inout ByteBuffer, arena: WireArena = .forCurrentThread
    ) {
        arena.reset()
        defer { arena.reset() }
        var request = Hiscore__V1__Request()
        hiscore__v1__request__init(&request)
        envelope.fill(&request, arena: arena)
        let size = hiscore__v1__request__get_packed_size(&request)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            guard let base = out.baseAddress else { return 0 }
            return hiscore__v1__request__pack(&request, base.assumingMemoryBound(to: UInt8.self))
        }
    }

    // MARK: Responses

    /// Decodes a `Response` payload (clients).
    public static func decodeResponse(
        _ bytes: UnsafeRawBufferPointer, arena: WireArena = .forCurrentThread
    ) throws(WireError) -> ResponseEnvelope {
        arena.reset()
        defer { arena.reset() }
        arena.decodeBudget = decodeBudget(forInputBytes: bytes.count)
        var allocator = arena.protobufAllocator
        let unpacked = withNonNullBytes(bytes) { data in
            hiscore__v1__response__unpack(&allocator, bytes.count, data)
        }
        guard let response = unpacked else {
            throw unpackFailure(arena: arena, messageName: "Response")
        }
        // No `free_unpacked`: the arena's reset frees the message (see `decodeRequestRecoveringCallID`).
        return try ResponseEnvelope(protoC: response.pointee)
    }

    /// Decodes the readable bytes of `buffer` (without moving its reader index).
    public static func decodeResponse(_ buffer: ByteBuffer, arena: WireArena = .forCurrentThread) throws(WireError)
        -> ResponseEnvelope
    {
        try buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(WireError) in try decodeResponse(bytes, arena: arena) }
        }.get()
    }

    /// Appends the protobuf encoding of `envelope` to `buffer`.
    public static func encodeResponse(
        _ envelope: ResponseEnvelope, into buffer: inout ByteBuffer, arena: WireArena = .forCurrentThread
    ) {
        arena.reset()
        defer { arena.reset() }
        var response = Hiscore__V1__Response()
        hiscore__v1__response__init(&response)
        envelope.fill(&response, arena: arena)
        // A bound saves protobuf-c's sizing walk (`PackedSizeBound`); `pack` writes no more.
        // Debug builds (every test, every fuzz replay) check the bound before `pack` relies on it.
        let capacity = PackedSizeBound.response(envelope) ?? hiscore__v1__response__get_packed_size(&response)
        assert(capacity >= hiscore__v1__response__get_packed_size(&response), "a packed-size bound below the packed size")
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { out in
            guard let base = out.baseAddress else { return 0 }
            return hiscore__v1__response__pack(&response, base.assumingMemoryBound(to: UInt8.self))
        }
    }

    // MARK: Helpers

    /// Calls `body` with a non-NULL pointer to `bytes` (an empty buffer may have no base address;
    /// an empty payload is a valid, all-defaults message).
    private static func withNonNullBytes<Result>(
        _ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<UInt8>) -> Result
    ) -> Result {
        if let base = bytes.baseAddress {
            return body(base.assumingMemoryBound(to: UInt8.self))
        }
        var placeholder: UInt8 = 0
        return withUnsafePointer(to: &placeholder) { body($0) }
    }

    private static func unpackFailure(arena: WireArena, messageName: String) -> WireError {
        if arena.decodeBudgetExceeded {
            return .malformed("\(messageName) would need more than \(arena.decodeBudget) bytes of memory once decoded")
        }
        return .malformed("not a valid hiscore.v1.\(messageName) (truncated or corrupt protobuf)")
    }
}
