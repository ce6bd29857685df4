#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HiscoreStorage

@Suite struct DataDirectoryTests {
    @Test func createsTheDirectoryAndFormatFile() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let nested = tmp.path + "/a/b/data"
        let data = try DataDirectory.open(path: nested)
        #expect(String(decoding: readBytes(nested + "/FORMAT"), as: UTF8.self) == "hiscore-data 2\n")
        #expect(String(decoding: readBytes(nested + "/LOCK"), as: UTF8.self) == "\(getpid())\n")
        data.close()
        // Reopening an existing data dir works.
        let again = try DataDirectory.open(path: nested)
        again.close()
    }

    /// Format 2 keys each new log segment's CRCs (`SegmentHeader`). A format-1 data dir is read
    /// as it is and marked 2 once recovered: a build that knows only format 1 would read a keyed
    /// segment as a torn one and cut it, so it must refuse the data dir instead. Not when it is
    /// opened: a data dir whose recovery fails stays readable by the build that wrote it.
    @Test func aFormatOneDataDirIsMarkedTwoOnceRecovered() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        _ = mkdir(tmp.dataPath, 0o755)
        writeBytes(tmp.dataPath + "/FORMAT", Array("hiscore-data 1\n".utf8))
        let data = try DataDirectory.open(path: tmp.dataPath)
        #expect(String(decoding: readBytes(tmp.dataPath + "/FORMAT"), as: UTF8.self) == "hiscore-data 1\n")
        try data.markCurrentFormat()
        #expect(String(decoding: readBytes(tmp.dataPath + "/FORMAT"), as: UTF8.self) == "hiscore-data 2\n")
        data.close()
        writeBytes(tmp.dataPath + "/FORMAT", Array("hiscore-data 3\n".utf8))
        #expect(throws: StorageError.self) { try DataDirectory.open(path: tmp.dataPath) }
    }

    @Test("the shard count is recorded in a new data dir, inferred in an older one, and another count is refused")
    func shardCount() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        #expect(try DataDirectory.recordedShardCount(path: tmp.dataPath) == nil)
        let data = try DataDirectory.open(path: tmp.dataPath)
        #expect(try DataDirectory.recordedShardCount(path: tmp.dataPath) == nil)
        try data.adopt(shardCount: 3)
        #expect(String(decoding: readBytes(tmp.dataPath + "/SHARDS"), as: UTF8.self) == "3\n")
        try data.adopt(shardCount: 3)
        do {
            try data.adopt(shardCount: 2)
            Issue.record("expected shardCountMismatch")
        } catch {
            #expect(error == .shardCountMismatch(path: tmp.dataPath, recorded: 3, requested: 2))
            #expect(error.description.contains("--shards 3"))
        }
        // Backups carry the count.
        let backup = tmp.path + "/backup"
        _ = try data.backup(to: backup)
        #expect(try DataDirectory.recordedShardCount(path: backup) == 3)
        data.close()

        // A data dir from before SHARDS: the count is one past the highest shard directory.
        let old = tmp.path + "/old"
        try DataDirectory.open(path: old).close()
        for name in ["shard-000", "shard-001", "shard-003", "shard-x", "shard-0002"] { try POSIX.makeDirectory(old + "/" + name) }
        #expect(try DataDirectory.recordedShardCount(path: old) == 4)
        let reopened = try DataDirectory.open(path: old)
        #expect(throws: StorageError.shardCountMismatch(path: old, recorded: 4, requested: 2)) { try reopened.adopt(shardCount: 2) }
        try reopened.adopt(shardCount: 4)
        #expect(String(decoding: readBytes(old + "/SHARDS"), as: UTF8.self) == "4\n")
        reopened.close()
        writeBytes(old + "/SHARDS", Array("zero\n".utf8))
        #expect(throws: StorageError.self) { try DataDirectory.recordedShardCount(path: old) }
    }

    @Test func newerFormatIsRefused() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        try DataDirectory.open(path: tmp.dataPath).close()
        writeBytes(tmp.dataPath + "/FORMAT", Array("hiscore-data 3\n".utf8))
        do {
            _ = try DataDirectory.open(path: tmp.dataPath)
            Issue.record("expected newerFormat")
        } catch {
            #expect(error == .newerFormat(file: tmp.dataPath + "/FORMAT", found: 3, supported: 2))
            #expect(error.description.contains("newer hiscored"))
        }
    }

    @Test func foreignDirectoriesAreRefused() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        writeBytes(tmp.path + "/important.txt", [1])
        #expect(throws: StorageError.self) { try DataDirectory.open(path: tmp.path) }
        #expect(!POSIX.exists(tmp.path + "/LOCK"))
        writeBytes(tmp.dataPath, [1])  // a file, not a directory
        #expect(throws: StorageError.self) { try DataDirectory.open(path: tmp.dataPath) }
    }

    /// flock locks belong to the open file description, so a second open in the same process
    /// conflicts just like another process would.
    @Test func secondOpenInTheSameProcessIsLocked() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let first = try DataDirectory.open(path: tmp.dataPath)
        do {
            _ = try DataDirectory.open(path: tmp.dataPath)
            Issue.record("expected locked")
        } catch {
            #expect(error == .locked(path: tmp.dataPath, pid: getpid()))
            #expect(error.description == "data dir \(tmp.dataPath) is in use by another hiscored (pid \(getpid())); stop it or use another --data-dir")
        }
        first.close()
        try DataDirectory.open(path: tmp.dataPath).close()
    }

    /// Another process sees the lock too (util-linux `flock -n` exits 1 when it is held).
    @Test func anotherProcessSeesTheLock() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        guard POSIX.exists("/usr/bin/flock") else { return }
        let data = try DataDirectory.open(path: tmp.dataPath)
        #expect(runFlock(tmp.dataPath + "/LOCK") == 1)
        data.close()
        #expect(runFlock(tmp.dataPath + "/LOCK") == 0)
    }

    private func runFlock(_ path: String) -> Int32 {
        var pid = pid_t()
        let args = ["/usr/bin/flock", "-n", path, "/bin/true"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        guard posix_spawn(&pid, args[0], nil, nil, &argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status >> 8) & 0xFF
    }
}
