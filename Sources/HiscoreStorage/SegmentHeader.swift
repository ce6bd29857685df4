/// The first 16 bytes of a log segment (data dir format 2 on):
///
///     "HSLOG\0\u{2}\0"  [u32 key]  [u32 CRC-32C of the 12 bytes before]     (little-endian)
///
/// Every frame of the segment stores its payload's CRC XORed with `key`, a random number drawn
/// when the segment is created and never shown to clients. Why: recovery tells a torn tail
/// from damage by looking for a valid frame after the bad one (`Frame.nextValidFrame`), and a
/// record's metadata is client bytes. With plain CRCs a client could put a complete frame in
/// its metadata; a write of that record cut by a power loss (or a `kill -9` between the pages
/// of a large write) then showed "a valid record after a bad one", and the server refused to
/// start. Without the key a client cannot make bytes that pass as a frame of the segment
/// (one chance in 2^32 per position). Segments written before format 2 have no header and
/// plain CRCs (key 0); they are read as before.
enum SegmentHeader {
    static let size = 16
    static let magic: [UInt8] = [0x48, 0x53, 0x4C, 0x4F, 0x47, 0x00, 0x02, 0x00]  // "HSLOG\0\2\0"

    /// The header of a new segment whose frames' CRCs are XORed with `key`.
    static func make(key: UInt32) -> [UInt8] {
        var bytes = magic
        bytes.appendLE(key)
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes.appendLE(crc)
        return bytes
    }

    /// A key for a new segment (never 0, which means "plain CRCs").
    static func newKey() -> UInt32 { UInt32.random(in: 1...UInt32.max) }

    enum Parsed: Equatable {
        /// A format-2 segment: frames start at `size`, CRCs XORed with `key`.
        case keyed(key: UInt32)
        /// A segment written before format 2 (or empty): frames from 0, plain CRCs.
        case plain
        /// The header itself was cut short (a crash right after the segment was created).
        case torn(String)
        /// The header is whole but wrong: damage.
        case damaged(String)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        let prefix = min(bytes.count, magic.count)
        guard prefix > 0, zip(bytes.prefix(prefix), magic).allSatisfy({ $0 == $1 }) else {
            // Not the magic. A format-1 segment starts with a frame whose length is at most
            // `Frame.maxRecordPayload`; anything larger is a header whose magic was damaged
            // (every bit flip of it still reads as 0x0F000000 or more). Read as plain, its
            // keyed frames would fail their CRCs, and the newest segment would be cut whole as
            // a torn tail: every acknowledged record in it lost with a warning.
            if bytes.count >= 4,
                Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) > Frame.maxRecordPayload
            {
                return .damaged("segment header damaged (its first bytes are neither the header's nor a record's)")
            }
            return .plain
        }
        if bytes.count < size { return .torn("incomplete segment header (\(bytes.count) of \(size) bytes)") }
        let key = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<12]))
        guard stored == actual else {
            return .damaged("segment header CRC mismatch (stored \(Frame.hex(stored)), computed \(Frame.hex(actual)))")
        }
        return .keyed(key: key)
    }
}
