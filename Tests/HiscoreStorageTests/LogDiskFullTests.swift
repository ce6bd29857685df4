#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HiscoreCore
import HiscoreTestSupport
import Testing
@testable import HiscoreStorage

/// The shard log on a disk that fills up (a tmpfs per test: needs root, skipped otherwise).
@Suite("The shard log on a full disk", .serialized, .enabled(if: Tmpfs.available, "needs root and tmpfs mounts"), .offCooperativePool)
struct LogDiskFullTests {
    /// A write cut short by a full disk left a torn record at the segment's end. Recovery cuts
    /// a torn tail, unless what was written of it holds a complete frame: then it cannot tell
    /// the tail from corruption in the middle of the log and refuses to start. Metadata is
    /// client bytes, so a client could put such a frame in it.
    @Test("a write refused for lack of space is cut back: the log reopens whole, even when the refused record's metadata holds a frame")
    func refusedWriteLeavesNoTornTail() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let data = try DataDirectory.open(path: disk.path + "/data")
            defer { data.close() }
            do {
                let (log, _) = try openShard(data, mode: .fsync)
                defer { log.close() }
                log.append(.put(PutRecord(board: 1, playerID: "before", score: 1, subscore: 0, sequence: 1, metadata: [])))
                try log.flushAndWait()

                await disk.fill()
                // The segment's last page takes the first part of the record, then the disk is full.
                var frame: [UInt8] = []
                Frame.append(to: &frame) { $0.append(0) }
                let metadata = [UInt8](repeating: 7, count: 16) + frame + [UInt8](repeating: 7, count: 8000)
                log.append(.put(PutRecord(board: 1, playerID: "refused", score: 2, subscore: 0, sequence: 2, metadata: metadata)))
                #expect(throws: StorageError.self) { try log.flushAndWait() }
                #expect(log.failure != nil)
            }
            disk.free()

            let recovered = try ShardLog.recover(directory: data, shard: 0)
            #expect(recovered.report.warnings.isEmpty, "\(recovered.report.warnings)")
            #expect(recovered.report.logRecords == 1)
        }
    }
}
