import NIOCore

/// Protobuf base-128 varints, for the few places that frame bytes around protobuf-c's output
/// (`PackedResult`) and for the load generator's hand-built requests.
public enum Varint {
    /// Bytes `value` takes as a varint (1 to 10).
    @inlinable
    public static func byteCount(_ value: UInt64) -> Int {
        var length = 1
        var rest = value >> 7
        while rest != 0 {
            length += 1
            rest >>= 7
        }
        return length
    }

    /// Appends `value` as a varint.
    @inlinable
    public static func write(_ value: UInt64, into buffer: inout ByteBuffer) {
        var rest = value
        while rest >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        buffer.writeInteger(UInt8(truncatingIfNeeded: rest))
    }
}
