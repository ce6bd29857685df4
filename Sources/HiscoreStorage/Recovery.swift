#if canImport(Glibc)
import Glibc
#endif

/// Receives a shard's recovered state, streamed: first every snapshot entry, then every log
/// record to replay, in order. Nothing is held twice in memory.
///
/// If recovery throws, the visitor may already have seen part of the data: discard it (the
/// server refuses to start anyway).
public protocol RecoveryVisitor {
    /// An entry of the snapshot, on board `board` (an incarnation). Entries of one board arrive
    /// in the order the snapshot was fed; boards may interleave if they were fed interleaved.
    mutating func snapshotEntry(board: UInt64, _ entry: SnapshotEntry)
    /// A log record to redo, in log order, after all snapshot entries.
    mutating func logRecord(_ record: LogRecord)
}

/// What recovery found, besides the data. Pass it to `ShardLog.init` to open the log.
public struct RecoveryReport: Sendable, Equatable {
    public var shard: Int
    /// The snapshot loaded, if any (its segment number).
    public var snapshotSegment: UInt64?
    /// The highest segment on disk (0 when none); the log continues with the next one.
    public var lastSegment: UInt64
    public var snapshotEntries: UInt64 = 0
    public var logRecords: UInt64 = 0
    /// Player removals among them (`remove_player`, erasures): the removed players' bytes are
    /// still in the log, until a snapshot replaces it.
    public var removalRecords: UInt64 = 0
    /// Log bytes replayed (the server may snapshot right away when this is large).
    public var logBytesSinceSnapshot: UInt64 = 0
    /// Bytes of snapshot and log read.
    public var bytesRead: UInt64 = 0
    /// Things the server must log, e.g. a torn tail that was cut.
    public var warnings: [String] = []

    /// The report of a shard with no files.
    public static func empty(shard: Int) -> RecoveryReport {
        RecoveryReport(shard: shard, snapshotSegment: nil, lastSegment: 0)
    }
}

/// A shard's recovered state, materialized (convenient for tests and small data; the server
/// should prefer the streaming `recover(directory:shard:visitor:)`).
public struct RecoveredShard: Sendable {
    /// Snapshot entries grouped by board incarnation.
    public var snapshot: [UInt64: [SnapshotEntry]] = [:]
    /// Records to replay over the snapshot, in order.
    public var records: [LogRecord] = []
    public var report: RecoveryReport

    public var warnings: [String] { report.warnings }
}

extension ShardLog {
    /// Recovers a shard into memory. See `recover(directory:shard:visitor:)`.
    public static func recover(directory: DataDirectory, shard: Int) throws(StorageError) -> RecoveredShard {
        struct Collector: RecoveryVisitor {
            var snapshot: [UInt64: [SnapshotEntry]] = [:]
            var records: [LogRecord] = []
            mutating func snapshotEntry(board: UInt64, _ entry: SnapshotEntry) {
                snapshot[board, default: []].append(entry)
            }
            mutating func logRecord(_ record: LogRecord) { records.append(record) }
        }
        var collector = Collector()
        let report = try recover(directory: directory, shard: shard, visitor: &collector)
        return RecoveredShard(snapshot: collector.snapshot, records: collector.records, report: report)
    }

    /// Recovers a shard: the newest snapshot (which must verify), then every segment from the
    /// snapshot's segment on, in order.
    ///
    /// Rules (see docs/durability.md):
    /// - a snapshot that fails verification → `corruptSnapshot` (never silently skipped: the
    ///   segments it replaced are gone, so an older snapshot would lose data);
    /// - segments needed but missing (a gap, or no snapshot and the first segment is not 1) →
    ///   `missingFiles`;
    /// - an incomplete or bad record at the end of the last segment, with nothing valid after
    ///   it → torn tail: truncated (fsynced) and reported in `warnings`;
    /// - any other bad record → `corruptLog(file:offset:reason:)`.
    /// Leftover `.snap.tmp` files (an interrupted snapshot) are deleted.
    public static func recover(
        directory: DataDirectory, shard: Int, visitor: inout some RecoveryVisitor
    ) throws(StorageError) -> RecoveryReport {
        let shardPath = directory.shardPath(shard)
        let listing = try ShardFiles.list(shardPath)
        for temporary in listing.temporaries {
            try POSIX.unlink(shardPath + "/" + ShardFiles.snapshotTempName(temporary))
        }
        var report = RecoveryReport.empty(shard: shard)
        report.lastSegment = max(listing.segments.last ?? 0, listing.snapshots.last ?? 0)
        let relative = ShardFiles.directoryName(shard: shard)

        // 1. The newest snapshot.
        var firstSegment: UInt64 = 1
        if let snapshot = listing.snapshots.last {
            report.snapshotSegment = snapshot
            firstSegment = snapshot
            let path = shardPath + "/" + ShardFiles.snapshotName(snapshot)
            let file = try MappedFile(path: path)
            let verified = try SnapshotFormat.verify(file.bytes, file: path, shard: shard, segment: snapshot)
            for chunk in verified.chunks {
                var reader = ByteReader(UnsafeRawBufferPointer(rebasing: file.bytes[chunk]))
                _ = reader.u8()
                let board = reader.u64()!
                let count = reader.varint()!
                for _ in 0..<count {
                    guard let entry = SnapshotFormat.decodeEntry(&reader) else {
                        throw .corruptSnapshot(file: path, reason: "malformed entry in the chunk at offset \(chunk.lowerBound - Frame.headerSize)")
                    }
                    visitor.snapshotEntry(board: board, entry)
                }
                guard reader.isAtEnd else {
                    throw .corruptSnapshot(file: path, reason: "chunk at offset \(chunk.lowerBound - Frame.headerSize) has trailing bytes")
                }
            }
            report.snapshotEntries = verified.entryCount
            report.bytesRead += UInt64(file.bytes.count)
        }

        // 2. The segments to replay: firstSegment, firstSegment + 1, ... without gaps.
        let segments = listing.segments.filter { $0 >= firstSegment }
        if let snapshot = report.snapshotSegment, segments.first != snapshot {
            throw .missingFiles(
                directory: shardPath,
                reason: "\(relative)/\(ShardFiles.segmentName(snapshot)) is missing; \(ShardFiles.snapshotName(snapshot)) needs it")
        }
        if report.snapshotSegment == nil, let first = segments.first, first != 1 {
            throw .missingFiles(
                directory: shardPath,
                reason: "no snapshot, and the log starts at \(ShardFiles.segmentName(first)): segments 1..\(first - 1) "
                    + "(or the snapshot that replaced them) are missing")
        }
        for (index, segment) in segments.enumerated() where index > 0 && segments[index - 1] + 1 != segment {
            throw .missingFiles(
                directory: shardPath,
                reason: "\(relative)/\(ShardFiles.segmentName(segments[index - 1] + 1)) is missing (the log jumps from "
                    + "segment \(segments[index - 1]) to \(segment))")
        }

        // 3. Replay, in order; only the last segment may end torn.
        for (index, segment) in segments.enumerated() {
            let path = shardPath + "/" + ShardFiles.segmentName(segment)
            let file = try MappedFile(path: path)
            let isLast = index == segments.count - 1
            let start: Int
            let key: UInt32
            switch SegmentHeader.parse(file.bytes) {
            case .keyed(let segmentKey): (start, key) = (SegmentHeader.size, segmentKey)
            case .plain: (start, key) = (0, 0)
            case .torn(let reason) where isLast:
                // Created, then cut before its header was whole: it never held a record.
                try truncate(path, to: 0)
                report.warnings.append("\(path): torn tail at offset 0 (\(reason)); dropped \(file.bytes.count) bytes of a segment cut short as it was created")
                continue
            case .torn(let reason), .damaged(let reason):
                throw .corruptLog(
                    file: path, offset: 0,
                    reason: isLast ? reason : "\(reason), in a file that is not the newest one (it was complete and fsynced)")
            }
            var records: UInt64 = 0
            var removals: UInt64 = 0
            let scan = try FramedFileScan.scan(file.bytes, file: path, isLast: isLast, startingAt: start, crcMask: key) { payload, _ in
                guard let record = LogRecord.decode(payload) else { return false }
                if case .remove = record { removals += 1 }
                visitor.logRecord(record)
                records += 1
                return true
            }
            report.logRecords += records
            report.removalRecords += removals
            report.bytesRead += UInt64(file.bytes.count)
            report.logBytesSinceSnapshot += UInt64(scan.validEnd)
            if let torn = scan.tornTail {
                try truncate(path, to: scan.validEnd)
                report.warnings.append(torn)
            } else if isLast {
                // Replayed from what may be only in the page cache (a crash between a write and
                // its fdatasync): make it durable before a new segment follows it, or a power loss
                // would leave it torn in the middle of the log.
                let fd = try POSIX.open(path, O_WRONLY)
                defer { POSIX.close(fd) }
                try POSIX.fdatasync(fd, path: path)
            }
        }
        return report
    }

    /// Cuts a torn tail and makes the new length durable before anything is appended after it.
    static func truncate(_ path: String, to length: Int) throws(StorageError) {
        let fd = try POSIX.open(path, O_WRONLY)
        defer { POSIX.close(fd) }
        try POSIX.truncate(fd, to: length, path: path)
        try POSIX.fsync(fd, path: path)
    }
}
