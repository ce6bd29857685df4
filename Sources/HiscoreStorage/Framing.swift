/// The on-disk frame shared by log segments, snapshots and the board catalog:
///
///     [u32 length][u32 CRC-32C of payload][payload: length bytes]     (little-endian)
///
/// A length of 0 is invalid: a run of zero bytes (what a file system may show after a crash
/// extended a file without writing its data) would otherwise look like valid empty frames,
/// since the CRC of nothing is 0.
enum Frame {
    static let headerSize = 8
    /// Largest payload accepted when reading a snapshot; larger lengths are treated as garbage.
    static let maxPayload = 16 << 20
    /// Largest payload of a log or catalog record (a put is at most ~67 KB with the decode
    /// limits). Tight on purpose: it bounds the work of searching a torn tail for valid frames.
    static let maxRecordPayload = 128 << 10

    /// Appends one frame whose payload `encode` writes, patching the header afterwards (the
    /// payload is encoded once, straight into the destination buffer).
    @inline(__always)
    static func append(to buffer: inout [UInt8], _ encode: (inout [UInt8]) -> Void) {
        let start = buffer.count
        buffer.appendLE(UInt64(0))
        encode(&buffer)
        let length = buffer.count - start - headerSize
        let crc = buffer.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + headerSize)...]))
        }
        buffer.storeLE(UInt32(length), at: start)
        buffer.storeLE(crc, at: start + 4)
    }

    /// What is at `offset`: a valid frame (payload range and the stored CRC), or why not.
    enum Probe {
        case frame(payload: Range<Int>, crc: UInt32)
        case invalid(reason: String)
    }

    /// `crcMask`: what the stored CRC was XORed with (a log segment's key, `SegmentHeader`;
    /// 0 elsewhere).
    @inline(__always)
    static func probe(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, maxPayload: Int = maxPayload, crcMask: UInt32 = 0
    ) -> Probe {
        let available = bytes.count - offset
        if available < headerSize {
            return .invalid(reason: "incomplete frame header (\(available) of \(headerSize) bytes)")
        }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)) ^ crcMask
        if length == 0 { return .invalid(reason: "zero frame length") }
        if length > maxPayload { return .invalid(reason: "frame length \(length) exceeds \(maxPayload)") }
        if length > available - headerSize {
            return .invalid(reason: "incomplete record (\(available - headerSize) of \(length) payload bytes)")
        }
        let payload = (offset + headerSize)..<(offset + headerSize + length)
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[payload]))
        if actual != stored {
            return .invalid(reason: "CRC mismatch (stored \(hex(stored)), computed \(hex(actual)))")
        }
        return .frame(payload: payload, crc: stored)
    }

    /// The first offset after `offset` where a complete, CRC-valid frame starts, if any.
    ///
    /// This is how a torn tail is told apart from corruption: a crash mid-write leaves garbage
    /// or nothing after the last good record, but never another valid record; valid data after
    /// a bad frame means the bad frame was damaged after it was written.
    static func nextValidFrame(in bytes: UnsafeRawBufferPointer, after offset: Int, crcMask: UInt32 = 0) -> Int? {
        var candidate = offset + 1
        while candidate + headerSize < bytes.count {
            if case .frame = probe(bytes, at: candidate, maxPayload: maxRecordPayload, crcMask: crcMask) { return candidate }
            candidate += 1
        }
        return nil
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Reads a frame-structured file (a log segment or the catalog) under the torn-tail rules.
///
/// - A bad frame in a file that is not the last one written → corruption (rotation fsyncs a
///   segment before the next one is created, so a finished file can never end torn).
/// - A bad frame in the last file with a valid frame anywhere after it → corruption.
/// - A bad frame in the last file with nothing valid after it → torn tail: the caller truncates.
/// - A CRC-valid frame whose payload does not decode → corruption (a torn write cannot produce
///   a matching CRC).
struct FramedFileScan {
    /// Where the valid frames end (the truncation point when there is a torn tail).
    var validEnd: Int
    /// Set when the file ends with a torn tail starting at `validEnd`.
    var tornTail: String?

    /// Calls `visit` with each frame's payload and offset; `visit` returns false when the
    /// payload is malformed.
    static func scan(
        _ bytes: UnsafeRawBufferPointer, file: String, isLast: Bool, startingAt start: Int = 0, crcMask: UInt32 = 0,
        _ visit: (UnsafeRawBufferPointer, Int) -> Bool
    ) throws(StorageError) -> FramedFileScan {
        var offset = start
        while offset < bytes.count {
            switch Frame.probe(bytes, at: offset, maxPayload: Frame.maxRecordPayload, crcMask: crcMask) {
            case .frame(let payload, _):
                if !visit(UnsafeRawBufferPointer(rebasing: bytes[payload]), offset) {
                    throw .corruptLog(
                        file: file, offset: UInt64(offset),
                        reason: "record passes its CRC but cannot be decoded (unknown type or layout: "
                            + "written by a newer hiscored, or a software bug)")
                }
                offset = payload.upperBound
            case .invalid(let reason):
                if !isLast {
                    throw .corruptLog(
                        file: file, offset: UInt64(offset),
                        reason: "\(reason), in a file that is not the newest one (it was complete and fsynced)")
                }
                if let next = Frame.nextValidFrame(in: bytes, after: offset, crcMask: crcMask) {
                    throw .corruptLog(
                        file: file, offset: UInt64(offset),
                        reason: "\(reason), but a valid record follows at offset \(next), so this is "
                            + "damage, not a torn write")
                }
                return FramedFileScan(
                    validEnd: offset,
                    tornTail: "\(file): torn tail at offset \(offset) (\(reason)); dropped \(bytes.count - offset) "
                        + "bytes of a write cut short by a crash, a full disk or an I/O error (never acknowledged in fsync mode)")
            }
        }
        return FramedFileScan(validEnd: offset, tornTail: nil)
    }
}
