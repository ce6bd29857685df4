import CProtobufC
import HiscoreProtoC

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
    public var encodedByteCount: Int { bytes.count + Self.varintLength(UInt64(fieldNumber) << 3) }

    /// `top` packed once.
    public static func top(_ top: TopResponse, arena: WireArena = .forCurrentThread) -> PackedResult {
        arena.reset()
        defer { arena.reset() }
        var response = Hiscore__V1__Response()
        hiscore__v1__response__init(&response)
        ResponseResult.top(top).fill(&response, arena: arena)
        guard let body = response.top else { preconditionFailure("a top result fills the top field") }
        let size = hiscore__v1__top_response__get_packed_size(body)
        var bytes = [UInt8](repeating: 0, count: varintLength(UInt64(size)) + size)
        bytes.withUnsafeMutableBufferPointer { out in
            guard let base = out.baseAddress else { return }
            var at = 0
            var remaining = UInt64(size)
            while remaining >= 0x80 {
                base[at] = UInt8(truncatingIfNeeded: remaining) | 0x80
                remaining >>= 7
                at += 1
            }
            base[at] = UInt8(remaining)
            at += 1
            let written = hiscore__v1__top_response__pack(body, base + at)
            precondition(written == size, "protobuf-c packed \(written) bytes of a \(size)-byte message")
        }
        return PackedResult(fieldNumber: UInt32(HISCORE__V1__RESPONSE__RESULT_TOP.rawValue), bytes: bytes)
    }

    static func varintLength(_ value: UInt64) -> Int {
        var length = 1
        var rest = value >> 7
        while rest != 0 {
            length += 1
            rest >>= 7
        }
        return length
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
