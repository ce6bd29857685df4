import CProtobufC
import HiscoreProtoC
import NIOCore

/// A response's result already packed by protobuf-c, for answers many calls share (the cached
/// top of a board): each call then packs only its envelope around these bytes instead of the
/// whole message again.
///
/// How it reaches the wire, still through protobuf-c: the envelope carries the bytes as one
/// unknown field whose number is the result's `oneof` field and whose wire type is
/// length-delimited, which `protobuf_c_message_pack` writes as they are: tag, then `bytes` (the
/// length varint and the message). A reader sees exactly the field a normal encoding writes (the
/// round-trip tests decode both and compare). Never produced by decoding.
public struct PackedResult: Sendable, Equatable {
    /// The `Response.result` field number.
    let fieldNumber: UInt32
    /// The length varint, then the packed message.
    let bytes: [UInt8]

    /// Bytes on the wire for the field, tag included (for frame-size checks).
    public var encodedByteCount: Int { bytes.count + Varint.byteCount(UInt64(fieldNumber) << 3) }

    /// `top` packed once.
    public static func top(_ top: TopResponse, arena: WireArena = .forCurrentThread) -> PackedResult {
        packed(.top(top), field: HISCORE__V1__RESPONSE__RESULT_TOP, arena: arena) { response in
            response.top.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: ProtobufCMessage.self) }
        }
    }

    /// A stream event packed once, for the streams that send the same one (top-N streams of a
    /// board with the same window and rank mode).
    public static func event(_ event: RankEvent, arena: WireArena = .forCurrentThread) -> PackedResult {
        packed(.event(event), field: HISCORE__V1__RESPONSE__RESULT_EVENT, arena: arena) { response in
            response.event.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: ProtobufCMessage.self) }
        }
    }

    /// `result` packed by protobuf-c, as the `field` of a response: its length, then its bytes.
    private static func packed(
        _ result: ResponseResult, field: Hiscore__V1__Response__ResultCase, arena: WireArena,
        body: (Hiscore__V1__Response) -> UnsafeMutablePointer<ProtobufCMessage>?
    ) -> PackedResult {
        arena.reset()
        defer { arena.reset() }
        var response = Hiscore__V1__Response()
        hiscore__v1__response__init(&response)
        result.fill(&response, arena: arena)
        guard let message = body(response) else { preconditionFailure("a result fills its own field") }
        let size = protobuf_c_message_get_packed_size(message)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Varint.byteCount(UInt64(size)) + size)
        Varint.write(UInt64(size), into: &buffer)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            guard let base = out.baseAddress else { return 0 }
            return protobuf_c_message_pack(message, base.assumingMemoryBound(to: UInt8.self))
        }
        return PackedResult(fieldNumber: UInt32(field.rawValue), bytes: Array(buffer.readableBytesView))
    }

    /// Sets `response`'s result to these bytes (as its one unknown field, allocated in `arena`).
    func fill(_ response: inout Hiscore__V1__Response, arena: WireArena) {
        let data = arena.allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { data.update(from: base, count: source.count) }
        }
        let field = arena.allocate(ProtobufCMessageUnknownField.self)
        field.initialize(to: ProtobufCMessageUnknownField(
            tag: fieldNumber, wire_type: PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, len: bytes.count, data: data))
        response.result_case = HISCORE__V1__RESPONSE__RESULT__NOT_SET
        response.base.n_unknown_fields = 1
        response.base.unknown_fields = field
    }
}
