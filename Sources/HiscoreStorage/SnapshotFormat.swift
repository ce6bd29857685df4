import HiscoreCore

/// One player's entry as a snapshot stores it (the `RankKey` is derived, so not stored).
public struct SnapshotEntry: Sendable, Equatable {
    public var playerID: String
    public var score: Int64
    public var subscore: Int64
    public var sequence: UInt64
    public var metadata: [UInt8]

    public init(playerID: String, score: Int64, subscore: Int64, sequence: UInt64, metadata: [UInt8]) {
        self.playerID = playerID
        self.score = score
        self.subscore = subscore
        self.sequence = sequence
        self.metadata = metadata
    }

    public init(_ entry: LeaderboardEntry) {
        self.init(
            playerID: entry.playerID, score: entry.score, subscore: entry.subscore, sequence: entry.sequence,
            metadata: entry.metadata)
    }
}

/// Snapshot file layout (`snapshot-<segment>.snap`):
///
///     header, 24 bytes:  "HISCSNAP", u32 version (1), u32 shard, u64 segment
///     chunk frames:      [u32 len][u32 crc][0x10, u64 board, varint count, count × entry]
///                        entry = playerID (varint len + UTF-8), score i64, subscore i64,
///                                sequence u64, metadata (varint len + bytes)
///     trailer frame:     [u32 len][u32 crc][0x7F, u64 entry count, u64 chunk count, u32 file checksum]
///
/// The file checksum is a CRC-32C over the header and every chunk frame's 8-byte frame header.
/// Each frame header carries the CRC of its payload, so this chains every byte of the file into
/// one value while reading each byte once; together with the counts it also catches lost,
/// duplicated or reordered chunks and truncation.
enum SnapshotFormat {
    static let magic: [UInt8] = Array("HISCSNAP".utf8)
    static let version: UInt32 = 1
    static let headerSize = 24
    static let chunkType: UInt8 = 0x10
    static let trailerType: UInt8 = 0x7F
    /// Chunk frames are cut at about this payload size.
    static let chunkPayloadTarget = 256 << 10

    static func header(shard: Int, segment: UInt64) -> [UInt8] {
        var bytes = magic
        bytes.appendLE(version)
        bytes.appendLE(UInt32(shard))
        bytes.appendLE(segment)
        return bytes
    }

    static func encode(_ entry: SnapshotEntry, into buffer: inout [UInt8]) {
        precondition(
            entry.playerID.utf8.count <= DecodeLimits.playerIDBytes && entry.metadata.count <= DecodeLimits.metadataBytes,
            "snapshot entry over the storage limits")
        buffer.appendString(entry.playerID)
        buffer.appendLE(entry.score)
        buffer.appendLE(entry.subscore)
        buffer.appendLE(entry.sequence)
        buffer.appendBytes(entry.metadata)
    }

    @inline(__always)
    static func decodeEntry(_ reader: inout ByteReader) -> SnapshotEntry? {
        guard let playerID = reader.string(max: DecodeLimits.playerIDBytes), let score = reader.i64(),
            let subscore = reader.i64(), let sequence = reader.u64(),
            let metadata = reader.byteArray(max: DecodeLimits.metadataBytes)
        else { return nil }
        return SnapshotEntry(playerID: playerID, score: score, subscore: subscore, sequence: sequence, metadata: metadata)
    }

    /// A verified snapshot: where its chunk payloads are.
    struct Verified {
        var chunks: [Range<Int>] = []
        var entryCount: UInt64 = 0
    }

    /// Checks everything (header, every frame CRC, counts, file checksum, exact end) before a
    /// single entry is handed out. Any failure is an error, never a silent fallback: an older
    /// snapshot's segments were deleted when this one was published.
    static func verify(_ bytes: UnsafeRawBufferPointer, file: String, shard: Int, segment: UInt64)
        throws(StorageError) -> Verified
    {
        func corrupt(_ reason: String) -> StorageError { .corruptSnapshot(file: file, reason: reason) }
        guard bytes.count >= headerSize else { throw corrupt("truncated: \(bytes.count) bytes, no header") }
        guard bytes.prefix(8).elementsEqual(magic) else { throw corrupt("bad magic, not a hiscore snapshot") }
        var header = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[8..<headerSize]))
        let fileVersion = header.u32()!
        let fileShard = header.u32()!
        let fileSegment = header.u64()!
        guard fileVersion == version else {
            throw corrupt("snapshot format version \(fileVersion), this hiscored reads version \(version)")
        }
        guard fileShard == UInt32(shard), fileSegment == segment else {
            throw corrupt("header says shard \(fileShard) segment \(fileSegment), file name says shard \(shard) segment \(segment)")
        }
        var checksum = CRC32C.update(0, UnsafeRawBufferPointer(rebasing: bytes[0..<headerSize]))
        var verified = Verified()
        var offset = headerSize
        while offset < bytes.count {
            guard case .frame(let payload, _) = Frame.probe(bytes, at: offset) else {
                if case .invalid(let reason) = Frame.probe(bytes, at: offset) {
                    throw corrupt("checksum mismatch: bad frame at offset \(offset): \(reason)")
                }
                throw corrupt("truncated frame at offset \(offset)")
            }
            let type = bytes[payload.lowerBound]
            if type == chunkType {
                var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[payload]))
                _ = reader.u8()
                guard reader.u64() != nil, let count = reader.varint() else {
                    throw corrupt("malformed chunk at offset \(offset)")
                }
                checksum = CRC32C.update(checksum, UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Frame.headerSize]))
                verified.chunks.append(payload)
                let (total, overflow) = verified.entryCount.addingReportingOverflow(count)
                guard !overflow else { throw corrupt("chunk entry counts overflow") }
                verified.entryCount = total
                offset = payload.upperBound
            } else if type == trailerType {
                var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[payload]))
                _ = reader.u8()
                guard let entries = reader.u64(), let chunks = reader.u64(), let stored = reader.u32(), reader.isAtEnd
                else { throw corrupt("malformed trailer at offset \(offset)") }
                guard payload.upperBound == bytes.count else {
                    throw corrupt("\(bytes.count - payload.upperBound) unexpected bytes after the trailer")
                }
                guard stored == checksum else {
                    throw corrupt("checksum mismatch: trailer says \(Frame.hex(stored)), file hashes to \(Frame.hex(checksum))")
                }
                guard entries == verified.entryCount, chunks == UInt64(verified.chunks.count) else {
                    throw corrupt("trailer counts \(entries) entries in \(chunks) chunks, file has \(verified.entryCount) in \(verified.chunks.count)")
                }
                return verified
            } else {
                throw corrupt("unknown frame type \(type) at offset \(offset)")
            }
        }
        throw corrupt("truncated: no trailer (the file ends at \(bytes.count) bytes)")
    }
}
