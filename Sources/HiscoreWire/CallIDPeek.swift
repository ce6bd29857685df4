extension WireCodec {
    /// The `call_id` (field 1, varint) of a `Request` or `Response` payload, read without decoding
    /// the rest, so a frame whose body is bad can still be answered on its call.
    ///
    /// Tolerant: it walks the top-level fields and returns the last `call_id` seen before the end
    /// or before the first byte that does not parse (protobuf's last-one-wins rule). Bounded: every
    /// step consumes at least one byte; it never reads past `bytes` and never traps.
    public static func peekCallID(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        var reader = ProtobufFieldReader(bytes: bytes)
        var callID: UInt64?
        while let key = reader.readVarint() {
            let fieldNumber = key >> 3
            switch key & 0x7 {
            case 0:  // varint
                guard let value = reader.readVarint() else { return callID }
                if fieldNumber == 1 { callID = value }
            case 1:  // 64-bit
                guard reader.skip(8) else { return callID }
            case 2:  // length-delimited
                guard let length = reader.readVarint(), reader.skip(length) else { return callID }
            case 5:  // 32-bit
                guard reader.skip(4) else { return callID }
            default:  // groups (3, 4) are not used by this protocol; 6 and 7 are invalid
                return callID
            }
        }
        return callID
    }
}

/// What a `Request` payload carries as its `auth_token`, read without decoding the rest.
public enum PeekedAuthToken: Equatable, Sendable {
    /// No auth_token field (or the bytes stop parsing before one).
    case absent
    /// A field that cannot be a credential: longer than the bound, or not UTF-8.
    case unusable
    case token(String)
}

extension WireCodec {
    /// The `auth_token` (field 3, length-delimited) of a `Request` payload, read without decoding
    /// the rest: a server with credentials checks it before decoding a large frame from a
    /// connection that has presented none. nil when absent, longer than `maxBytes`, not UTF-8, or
    /// when the bytes stop parsing before one is found. Bounded like `peekCallID`.
    public static func peekAuthToken(_ bytes: UnsafeRawBufferPointer, maxBytes: Int) -> String? {
        if case .token(let token) = peekAuthTokenField(bytes, maxBytes: maxBytes) { return token }
        return nil
    }

    /// `peekAuthToken`, telling a token that is absent from one that is present but unusable
    /// (which counts as a failed authentication, as an invalid token does).
    public static func peekAuthTokenField(_ bytes: UnsafeRawBufferPointer, maxBytes: Int) -> PeekedAuthToken {
        var reader = ProtobufFieldReader(bytes: bytes)
        var token = PeekedAuthToken.absent
        while let key = reader.readVarint() {
            switch key & 0x7 {
            case 0:
                guard reader.readVarint() != nil else { return token }
            case 1:
                guard reader.skip(8) else { return token }
            case 2:
                guard let length = reader.readVarint(), length <= UInt64(bytes.count - reader.offset) else { return token }
                if key >> 3 == 3 {
                    guard length <= UInt64(maxBytes) else { return .unusable }
                    // protobuf-c hands strings over as C strings: the decoded token ends at its
                    // first NUL byte, and so does this one (found by the fuzzer's oracle).
                    let field = UnsafeRawBufferPointer(rebasing: bytes[reader.offset..<(reader.offset + Int(length))])
                    // An empty token is no token (proto3: the field's default).
                    token = String(validating: field.prefix { $0 != 0 }, as: UTF8.self).map { $0.isEmpty ? .absent : .token($0) } ?? .unusable
                }
                guard reader.skip(length) else { return token }
            case 5:
                guard reader.skip(4) else { return token }
            default:
                return token
            }
        }
        return token
    }
}

/// A bounds-checked cursor over protobuf wire-format bytes.
private struct ProtobufFieldReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// A base-128 varint of at most 10 bytes, or nil when truncated or longer.
    mutating func readVarint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var index = offset
        while index < bytes.count, shift < 70 {
            let byte = bytes[index]
            value |= UInt64(byte & 0x7f) << shift
            index += 1
            if byte & 0x80 == 0 {
                offset = index
                return value
            }
            shift += 7
        }
        return nil
    }

    mutating func skip<Count: BinaryInteger>(_ count: Count) -> Bool {
        guard count <= bytes.count - offset else { return false }
        offset += Int(count)
        return true
    }
}
