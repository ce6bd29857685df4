#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import HiscoreStorage

/// The frame sizes of `records`, in order (to locate record boundaries in a segment).
func frameSizes(_ records: [LogRecord]) -> [Int] {
    records.map { record in
        var bytes: [UInt8] = []
        record.encode(into: &bytes)
        return Frame.headerSize + bytes.count
    }
}

@Suite struct TornTailTests {
    static let records: [LogRecord] = (0..<10).map { index in
        .put(PutRecord(board: 1, playerID: "player-\(index)", score: Int64(index * 10), subscore: 0,
            sequence: UInt64(1000 + index), metadata: [UInt8](repeating: UInt8(index), count: index)))
    }

    /// Writes `records` to shard 0 segment 1 and returns the data dir (open) and segment bytes.
    func writeSegment(_ tmp: TemporaryDirectory) throws -> (DataDirectory, [UInt8]) {
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, mode: .fsync)
        log.append(Self.records)
        log.close()
        return (data, readBytes(segmentPath(data, 1)))
    }

    @Test func everyTruncationOfTheLastRecordIsATornTail() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, original) = try writeSegment(tmp)
        let lastSize = frameSizes(Self.records).last!
        let goodEnd = original.count - lastSize
        let path = segmentPath(data, 1)
        for cut in 1..<lastSize {
            writeBytes(path, Array(original[..<(original.count - cut)]))
            let recovered = try ShardLog.recover(directory: data, shard: 0)
            #expect(recovered.records == Array(Self.records.dropLast()), "cut \(cut)")
            #expect(recovered.warnings.count == 1, "cut \(cut)")
            #expect(recovered.warnings.first?.contains("torn tail at offset \(goodEnd)") == true, "cut \(cut)")
            #expect(fileSize(path) == goodEnd, "cut \(cut)")
        }
        // Untouched: no warning, nothing cut.
        writeBytes(path, original)
        let clean = try ShardLog.recover(directory: data, shard: 0)
        #expect(clean.records == Self.records && clean.warnings.isEmpty)

        // After a cut, the log continues in a new segment and the cut one is clean for good.
        writeBytes(path, Array(original.dropLast(5)))
        let (log, recovered) = try openShard(data, mode: .fsync)
        #expect(recovered.warnings.count == 1)
        log.append(Self.records.last!)
        log.close()
        let again = try ShardLog.recover(directory: data, shard: 0)
        #expect(again.records == Self.records && again.warnings.isEmpty)
    }

    @Test func zeroFilledOrGarbageTailIsTorn() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, original) = try writeSegment(tmp)
        let path = segmentPath(data, 1)
        for tail in [[UInt8](repeating: 0, count: 4096), [0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3], [5, 0, 0, 0, 9]] {
            writeBytes(path, original + tail)
            let recovered = try ShardLog.recover(directory: data, shard: 0)
            #expect(recovered.records == Self.records)
            #expect(recovered.warnings.count == 1)
            #expect(fileSize(path) == original.count)
        }
    }

    @Test func anyFlippedByteOfAnEarlyRecordIsCorruption() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, original) = try writeSegment(tmp)
        let path = segmentPath(data, 1)
        let sizes = frameSizes(Self.records)
        let start = SegmentHeader.size + sizes[0] + sizes[1]  // record 2
        for position in start..<(start + sizes[2]) {
            for mask: UInt8 in [0x01, 0x80] {
                var damaged = original
                damaged[position] ^= mask
                writeBytes(path, damaged)
                do {
                    _ = try ShardLog.recover(directory: data, shard: 0)
                    Issue.record("flip at \(position) mask \(mask) was not detected")
                } catch {
                    #expect(error == .corruptLog(file: path, offset: UInt64(start), reason: reason(of: error)))
                    #expect(error.description.contains(path) && error.description.contains("restore"))
                }
                #expect(fileSize(path) == original.count, "a corrupt log must never be truncated")
            }
        }
    }

    @Test func damageInANonLastSegmentIsCorruptionEvenAtItsEnd() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, original) = try writeSegment(tmp)
        // A second segment makes segment 1 non-last.
        let (log, _) = try openShard(data, mode: .fsync)
        log.append(.clearBoard(board: 5))
        log.close()
        let path = segmentPath(data, 1)
        writeBytes(path, Array(original.dropLast(3)))
        #expect(throws: StorageError.self) { try ShardLog.recover(directory: data, shard: 0) }
        do {
            _ = try ShardLog.recover(directory: data, shard: 0)
        } catch {
            guard case .corruptLog(let file, let offset, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(file == path)
            #expect(offset == UInt64(original.count - frameSizes(Self.records).last!))
        }
    }

    @Test func validCRCButUndecodablePayloadIsCorruption() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, original) = try writeSegment(tmp)
        var bogus: [UInt8] = []
        Frame.append(to: &bogus) { $0 += [99, 1, 2, 3, 4, 5, 6, 7, 8] }  // unknown record type 99
        guard case .keyed(let key) = original.withUnsafeBytes({ SegmentHeader.parse($0) }) else {
            Issue.record("a new segment has a header")
            return
        }
        ShardLog.maskCRCs(&bogus, 0..<bogus.count, key: key)
        writeBytes(segmentPath(data, 1), original + bogus)
        #expect(throws: StorageError.self) { try ShardLog.recover(directory: data, shard: 0) }
    }

    /// A record's metadata is client bytes: with plain CRCs a client could put a whole frame in
    /// it, and a write of that record cut by a power loss showed "a valid record after a bad
    /// one": the server refused to start. The segment's key makes such a frame fail its CRC.
    @Test func aFrameInsideACutRecordsMetadataIsATornTail() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        var frame: [UInt8] = []
        Frame.append(to: &frame) { LogRecord.clearBoard(board: 7).encode(into: &$0) }
        let crafted = LogRecord.put(PutRecord(
            board: 1, playerID: "crafty", score: 1, subscore: 0, sequence: 2,
            metadata: [UInt8](repeating: 1, count: 8) + frame + [UInt8](repeating: 1, count: 64)))
        let (log, _) = try openShard(data, mode: .fsync)
        log.append([Self.records[0], crafted])
        log.close()
        let path = segmentPath(data, 1)
        let original = readBytes(path)
        let craftedStart = SegmentHeader.size + frameSizes([Self.records[0]])[0]
        // Cut after the embedded frame, before the end of the crafted record.
        writeBytes(path, Array(original[..<(original.count - 32)]))
        let recovered = try ShardLog.recover(directory: data, shard: 0)
        #expect(recovered.records == [Self.records[0]])
        #expect(recovered.warnings.first?.contains("torn tail at offset \(craftedStart)") == true, "\(recovered.warnings)")
    }

    /// Segments written before format 2 have no header and plain CRCs: read as they were, and
    /// the log goes on in a keyed segment after them.
    @Test func aFormatOneSegmentIsReadAndTheLogGoesOnAfterIt() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        _ = mkdir(data.shardPath(0), 0o755)
        var plain: [UInt8] = []
        for record in Self.records { Frame.append(to: &plain) { record.encode(into: &$0) } }
        writeBytes(segmentPath(data, 1), plain + [0xFF, 0xFF])  // with a torn tail, as a crash leaves
        let (log, recovered) = try openShard(data, mode: .fsync)
        #expect(recovered.records == Self.records)
        #expect(recovered.warnings.first?.contains("torn tail at offset \(plain.count)") == true)
        log.append(.clearBoard(board: 5))
        log.close()
        let again = try ShardLog.recover(directory: data, shard: 0)
        #expect(again.records == Self.records + [.clearBoard(board: 5)] && again.warnings.isEmpty)
        #expect(readBytes(segmentPath(data, 2)).prefix(SegmentHeader.magic.count).elementsEqual(SegmentHeader.magic))
    }

    /// A segment created just before a crash may hold part of its header, or nothing.
    @Test func aTornSegmentHeaderIsATornTailButOnlyInTheLastSegment() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, original) = try writeSegment(tmp)
        let (log, _) = try openShard(data, mode: .fsync)
        log.close()
        for cut in [1, 8, 15] {
            writeBytes(segmentPath(data, 2), Array(SegmentHeader.make(key: 9).prefix(cut)))
            let recovered = try ShardLog.recover(directory: data, shard: 0)
            #expect(recovered.records == Self.records, "cut \(cut)")
            #expect(recovered.warnings.count == 1 && fileSize(segmentPath(data, 2)) == 0, "cut \(cut)")
        }
        var header = SegmentHeader.make(key: 9)
        header[9] ^= 1
        writeBytes(segmentPath(data, 2), header)
        #expect(throws: StorageError.self) { try ShardLog.recover(directory: data, shard: 0) }
        try FileManager.default.removeItem(atPath: segmentPath(data, 2))

        // Any flipped bit of a whole segment's magic is damage: read as a format-1 segment, its
        // keyed records would fail their CRCs and the whole newest segment would be cut.
        for position in 0..<SegmentHeader.magic.count {
            for mask: UInt8 in [0x01, 0x80] {
                var damaged = original
                damaged[position] ^= mask
                writeBytes(segmentPath(data, 1), damaged)
                #expect(throws: StorageError.self, "flip at \(position) mask \(mask)") {
                    try ShardLog.recover(directory: data, shard: 0)
                }
                #expect(fileSize(segmentPath(data, 1)) == original.count, "a damaged segment must never be cut")
            }
        }
        writeBytes(segmentPath(data, 1), original)
        writeBytes(segmentPath(data, 1), Array(original.prefix(10)))
        writeBytes(segmentPath(data, 2), SegmentHeader.make(key: 9))
        #expect(throws: StorageError.self, "a torn header in a segment that is not the newest is damage") {
            try ShardLog.recover(directory: data, shard: 0)
        }
    }
}

func reason(of error: StorageError) -> String {
    if case .corruptLog(_, _, let reason) = error { return reason }
    return ""
}
