/// Little-endian, fixed-width integers and LEB128 lengths: the building blocks of every payload.
///
/// Fixed 8-byte numbers (scores, sequences, incarnations) decode with one unaligned load; only
/// lengths are varints, because they are almost always below 128 and so cost one byte.
extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendLE(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendLE(_ value: Int64) { appendLE(UInt64(bitPattern: value)) }

    @inline(__always)
    mutating func appendLE(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        append(UInt8(value))
    }

    /// A varint length followed by the string's UTF-8 bytes.
    @inline(__always)
    mutating func appendString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count))
            append(contentsOf: utf8)
        }
    }

    @inline(__always)
    mutating func appendBytes(_ bytes: [UInt8]) {
        appendVarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }

    /// Overwrites 4 bytes at `offset` (frame headers are patched after the payload is encoded).
    @inline(__always)
    mutating func storeLE(_ value: UInt32, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }
}

/// Reads a payload in place. Every accessor returns nil past the end, so a corrupt length can
/// never read out of bounds; decoders turn nil into "malformed".
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    @inline(__always)
    mutating func u8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always)
    mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    mutating func u64() -> UInt64? {
        guard remaining >= 8 else { return nil }
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    mutating func i64() -> Int64? { u64().map { Int64(bitPattern: $0) } }

    @inline(__always)
    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            guard let byte = u8() else { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    /// A varint length and that many bytes, as a view into the payload.
    @inline(__always)
    mutating func lengthPrefixed(max: Int) -> UnsafeRawBufferPointer? {
        guard let length = varint(), length <= UInt64(max), Int(length) <= remaining else { return nil }
        defer { offset += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
    }

    @inline(__always)
    mutating func string(max: Int) -> String? {
        guard let raw = lengthPrefixed(max: max) else { return nil }
        // Small strings (≤ 15 bytes, most player ids) are stored inline: no heap allocation.
        return String(decoding: raw, as: UTF8.self)
    }

    @inline(__always)
    mutating func byteArray(max: Int) -> [UInt8]? {
        guard let raw = lengthPrefixed(max: max) else { return nil }
        return raw.isEmpty ? [] : [UInt8](raw)
    }
}

/// Decoding limits: generous versus what the engine accepts, but small enough that a corrupt
/// length is rejected rather than trusted.
enum DecodeLimits {
    static let playerIDBytes = 1024
    static let metadataBytes = 1 << 16
    static let boardIDBytes = 1024
}
