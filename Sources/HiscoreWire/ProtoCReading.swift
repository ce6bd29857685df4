#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CProtobufC

/// Reading fields of unpacked protobuf-c structs defensively: the bytes came from the network.
///
/// protobuf-c checks the wire format but not the meaning: strings are not validated as UTF-8,
/// enum fields keep whatever number was sent, and a message-typed field may be NULL (absent).
enum ProtoCRead {
    /// A `string` field of a message `unpack` decoded (see `WireArena.decodedByteCount(of:)`).
    /// protobuf-c stores an absent string as a pointer to a static empty string; NULL is treated
    /// as "" too. A string holding a NUL byte is refused: read as a C string it would silently
    /// become its part before the NUL ("p:1\0x" would name player "p:1").
    static func string(_ pointer: UnsafePointer<CChar>?, field: @autoclosure () -> String) throws(WireError)
        -> String
    {
        guard let pointer, UnsafeRawPointer(pointer) != UnsafeRawPointer(hiscore_protobuf_c_empty_string()) else { return "" }
        let length = strlen(pointer)
        guard WireArena.decodedByteCount(of: pointer) == length + 1 else {
            throw .invalidField("\(field()): contains a NUL byte")
        }
        guard length > 0 else { return "" }
        guard let string = String(validatingCString: pointer) else {
            throw .invalidField("\(field()): invalid UTF-8")
        }
        return string
    }

    /// A `bytes` field.
    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    /// A message-typed field the method cannot do without (`config` of CreateBoard, ...).
    static func required<Message>(_ pointer: UnsafeMutablePointer<Message>?, field: String) throws(WireError)
        -> Message
    {
        guard let pointer else { throw .invalidField("\(field): missing") }
        return pointer.pointee
    }

    /// A repeated message field, each element converted by `convert`. Errors are prefixed with
    /// the element's position ("submits[3].player_id: invalid UTF-8").
    static func repeated<Message, Value>(
        _ elements: UnsafeMutablePointer<UnsafeMutablePointer<Message>?>?, count: Int, field: String,
        _ convert: (Message) throws(WireError) -> Value
    ) throws(WireError) -> [Value] {
        guard count > 0, let elements else { return [] }
        var values: [Value] = []
        values.reserveCapacity(count)
        for index in 0..<count {
            guard let element = elements[index] else { throw .malformed("\(field)[\(index)]: missing") }
            do throws(WireError) {
                values.append(try convert(element.pointee))
            } catch {
                switch error {
                case .invalidField(let message): throw .invalidField("\(field)[\(index)].\(message)")
                case .malformed(let message): throw .malformed("\(field)[\(index)].\(message)")
                case .tooManyElements(let message): throw .tooManyElements("\(field)[\(index)].\(message)")
                }
            }
        }
        return values
    }

    /// A repeated `string` field.
    static func strings(
        _ elements: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, count: Int, field: String
    ) throws(WireError) -> [String] {
        guard count > 0, let elements else { return [] }
        var values: [String] = []
        values.reserveCapacity(count)
        for index in 0..<count {
            values.append(try string(elements[index], field: "\(field)[\(index)]"))
        }
        return values
    }

    /// The number an enum field carries, as sent (protobuf-c stores an int32 without checking it
    /// against the enum's values).
    static func enumNumber<Raw: BinaryInteger>(_ rawValue: Raw) -> Int32 {
        Int32(truncatingIfNeeded: rawValue)
    }

    static func unknownEnumValue<Raw: BinaryInteger>(_ field: String, _ rawValue: Raw) -> WireError {
        .invalidField("\(field): unknown value \(enumNumber(rawValue))")
    }
}
