#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HiscoreCore
import HiscoreTestSupport
import Testing
@testable import HiscoreStorage


private func isNoSpace(_ error: StorageError?) -> Bool {
    if case .io(_, _, let code)? = error { return code == ENOSPC }
    return false
}

/// The board catalog, atomic file writes and backups on a full disk.
@Suite("Storage on a full disk: catalog, atomic writes, backup", .serialized, .enabled(if: Tmpfs.available, "needs root and tmpfs mounts"), .offCooperativePool)
struct DiskFullCatalogStorageTests {
    @Test("a catalog append refused for lack of space is cut back and does not poison the catalog: once space is freed appends work, and the file reopens whole")
    func catalogAppendRefusedForSpaceLeavesItUsable() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let data = try DataDirectory.open(path: disk.path + "/data")
            defer { data.close() }
            let catalog = try BoardCatalog.open(directory: data)
            defer { catalog.close() }  // idempotent: also when an expectation throws
            // Fill the file's pages up to a few bytes short of a page boundary, so that the refused
            // append writes part of its bytes into the last page before ENOSPC: the cut-back matters.
            var incarnation: UInt64 = 0
            let long = String(repeating: "x", count: Identifier.maxBytes - 8)
            func size() -> Int { fileSize(data.catalogPath) }
            while incarnation < 10_000 {
                let remaining = (4096 - size() % 4096) % 4096
                if remaining > 0 && remaining < 40 { break }
                incarnation += 1
                let id = remaining > 200 ? "b\(incarnation)-\(long)".prefix(Identifier.maxBytes) : "b\(incarnation)"
                try catalog.append(.created(incarnation: incarnation, config: BoardConfig(id: String(id)), createdAt: 1))
            }
            let before = size()
            try #require((4096 - before % 4096) % 4096 > 0)
            await disk.fill()

            var refused: StorageError?
            do throws(StorageError) {
                try catalog.append(.created(incarnation: incarnation + 1, config: BoardConfig(id: "refused-\(long)"), createdAt: 2))
            } catch { refused = error }
            #expect(isNoSpace(refused), "the append while full: \(String(describing: refused))")
            #expect(size() == before, "the refused append's bytes were not cut back")
            #expect(catalog.failure == nil, "one refused write poisoned the catalog: \(String(describing: catalog.failure))")

            disk.free()
            try catalog.append(.created(incarnation: incarnation + 2, config: BoardConfig(id: "after"), createdAt: 3))
            #expect(catalog.load().boards.count == Int(incarnation) + 1)
            catalog.close()

            let reopened = try BoardCatalog.open(directory: data)
            defer { reopened.close() }
            #expect(reopened.warnings.isEmpty, "\(reopened.warnings)")
            let boards = reopened.load().boards
            #expect(boards.count == Int(incarnation) + 1)
            #expect(boards[incarnation + 2]?.config.id == "after")
            #expect(boards[incarnation + 1] == nil, "the refused board came back")
        }
    }

    /// A catalog over 1 MiB is compacted on open; on a full disk the compaction's temporary file
    /// could not be written and `open` threw: hiscored refused to start (leaving boards.log.tmp),
    /// although the old file is whole and usable.
    @Test("opening a large catalog on a full disk warns and keeps the uncompacted file instead of failing, and leaves no temporary file")
    func catalogCompactionOnOpenWithFullDisk() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let data = try DataDirectory.open(path: disk.path + "/data")
            defer { data.close() }
            do {
                let catalog = try BoardCatalog.open(directory: data)
                for incarnation in UInt64(1)...200 {
                    try catalog.append(.created(incarnation: incarnation, config: BoardConfig(id: "match-\(incarnation)"), createdAt: 1))
                    try catalog.append(.deleted(incarnation: incarnation, at: 2))
                }
                try catalog.append(.created(incarnation: 201, config: BoardConfig(id: "live"), createdAt: 1))
                catalog.close()
            }
            let before = fileSize(data.catalogPath)
            await disk.fill()
            var opened: BoardCatalog?
            var failure: StorageError?
            do throws(StorageError) { opened = try BoardCatalog.open(directory: data, compactAboveBytes: 1024) } catch { failure = error }
            defer { opened?.close() }
            #expect(failure == nil, "the open (the server's start) fails: \(String(describing: failure))")
            #expect(opened?.load().boards.count == 1)
            #expect(opened?.load().highestIncarnation == 201)
            #expect(opened?.warnings.contains { $0.contains("not compacted") } == true, "no warning: \(opened?.warnings ?? [])")
            #expect(fileSize(data.catalogPath) == before)
            #expect(!FileManager.default.fileExists(atPath: data.catalogPath + ".tmp"), "a failed compaction left boards.log.tmp")
            // The uncompacted catalog takes appends (in its last page's slack) and compacts once there is room.
            opened?.close()
            disk.free()
            let compacted = try BoardCatalog.open(directory: data, compactAboveBytes: 1024)
            defer { compacted.close() }
            #expect(compacted.warnings.isEmpty)
            #expect(fileSize(data.catalogPath) < before)
            #expect(compacted.load().boards.count == 1)
        }
    }

    @Test("a failed atomic file write deletes its temporary file and leaves the old file")
    func atomicWriteFailureRemovesTemporary() async throws {
        try await withTmpfs(bytes: 256 << 10) { disk in
            let target = disk.path + "/file"
            try POSIX.writeFileAtomically(target, directory: disk.path, Array("old\n".utf8))
            await disk.fill()
            #expect(throws: StorageError.self) {
                try POSIX.writeFileAtomically(target, directory: disk.path, [UInt8](repeating: 1, count: 64 << 10))
            }
            #expect(!FileManager.default.fileExists(atPath: target + ".tmp"))
            #expect(readBytes(target) == Array("old\n".utf8))
        }
    }

    /// A backup into a destination without room left a partial copy: on the data disk it kept
    /// the space the live logs need, and a retry into the same directory was refused as "not empty".
    @Test("a backup failing for lack of space removes what it wrote (and the destination if it made it); a retry into the same directory works once there is room",
          arguments: [false, true])
    func failedBackupRemovesPartialCopy(destinationExists: Bool) async throws {
        let source = TemporaryDirectory()
        defer { source.remove() }
        try await withTmpfs(bytes: 256 << 10) { target in
            let (data, catalog) = try BackupTests.dataDirectoryWithBoard(source)
            defer { data.close() }
            let (log, _) = try openShard(data, mode: .fsync)
            let metadata = [UInt8](repeating: 7, count: 4000)
            for i in 0..<200 {
                log.append(.put(PutRecord(board: 1, playerID: "p\(i)", score: Int64(i), subscore: 0, sequence: UInt64(i + 1), metadata: metadata)))
            }
            try log.flushAndWait()
            defer { log.close() }

            let destination = target.path + "/backup"
            if destinationExists { try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: false) }
            var failure: StorageError?
            do throws(StorageError) { _ = try data.backup(to: destination, hardLinks: false) } catch { failure = error }
            #expect(isNoSpace(failure), "\(String(describing: failure))")
            if destinationExists {
                #expect((try? FileManager.default.contentsOfDirectory(atPath: destination)) == [], "the failed backup left files behind")
            } else {
                #expect(!FileManager.default.fileExists(atPath: destination), "the failed backup left its destination behind")
            }
            #expect(Tmpfs.run("/bin/mount", ["-o", "remount,size=\(8 << 20)", target.path]) == 0)
            let summary = try data.backup(to: destination, hardLinks: false)
            #expect(summary.files == 2)
            let restored = try DataDirectory.open(path: destination)
            defer { restored.close() }
            let restoredCatalog = try BoardCatalog.open(directory: restored)
            defer { restoredCatalog.close() }
            #expect(restoredCatalog.load() == catalog.load())
            #expect(try ShardLog.recover(directory: restored, shard: 0).records.count == 200)
        }
    }
}
