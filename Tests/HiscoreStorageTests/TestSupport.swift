#if canImport(Glibc)
import Glibc
#endif
import HiscoreCore
@testable import HiscoreStorage
import HiscoreTestSupport

/// A fresh directory under /tmp, removed (recursively) by `remove()`.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "hiscore-storage") {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = String(cString: result!)
    }

    /// The data dir inside (not yet created, so `DataDirectory.open` creates it).
    var dataPath: String { path + "/data" }

    func remove() { Self.removeTree(path) }

    static func removeTree(_ path: String) {
        if let names = try? POSIX.listDirectory(path) {
            for name in names { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

/// Blocks a test thread until `count` events happened (completions run on the writer thread).
final class Latch: @unchecked Sendable {
    private let lock = ConditionLock()
    private let condition: Condition
    private var remaining: Int

    init(_ count: Int) {
        remaining = count
        condition = Condition(lock)
    }

    func countDown() {
        lock.withLock {
            remaining -= 1
            if remaining <= 0 { condition.broadcast() }
        }
    }

    func wait() {
        lock.withLock { while remaining > 0 { condition.wait() } }
    }

    /// Waits at most `seconds`; true when the events happened.
    func wait(seconds: Double) -> Bool {
        let deadline = POSIX.monotonicNanoseconds() + UInt64(seconds * 1e9)
        return lock.withLock {
            while remaining > 0 && POSIX.monotonicNanoseconds() < deadline { condition.wait(untilMonotonic: deadline) }
            return remaining <= 0
        }
    }
}

/// A value shared with completions on other threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withValue<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
    var current: Value { lock.withLock { value } }
}

/// The reference model of a shard's state: board → player → entry.
struct ShardModel: Equatable {
    var boards: [UInt64: [String: SnapshotEntry]] = [:]

    mutating func apply(_ record: LogRecord) {
        switch record {
        case .put(let put):
            boards[put.board, default: [:]][put.playerID] = SnapshotEntry(
                playerID: put.playerID, score: put.score, subscore: put.subscore, sequence: put.sequence,
                metadata: put.metadata)
        case .remove(let board, let playerID):
            boards[board]?[playerID] = nil
        case .clearBoard(let board):
            boards[board] = nil
        }
        boards = boards.filter { !$0.value.isEmpty }
    }

    /// What recovery yields, applied the way the server will: snapshot, then records.
    init(recovered: RecoveredShard) {
        for (board, entries) in recovered.snapshot {
            for entry in entries { boards[board, default: [:]][entry.playerID] = entry }
        }
        for record in recovered.records { apply(record) }
        boards = boards.filter { !$0.value.isEmpty }
    }

    init() {}
}

/// A random record: mostly puts on a few boards, some removes and rare clears.
func randomRecord(_ rng: inout SplitMix64, sequence: inout UInt64) -> LogRecord {
    let board = UInt64(1 + rng.below(3))
    let player = "p\(rng.below(200))"
    switch rng.below(100) {
    case 0..<80:
        sequence += 1 + UInt64(rng.below(5))
        let metadata = (0..<rng.below(12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return .put(PutRecord(
            board: board, playerID: player, score: Int64(bitPattern: rng.next()) >> rng.below(60),
            subscore: Int64(rng.below(1000)) - 500, sequence: sequence, metadata: metadata))
    case 80..<98:
        return .remove(board: board, playerID: player)
    default:
        return .clearBoard(board: board)
    }
}

/// One of every record kind, with edge values.
let everyKind: [LogRecord] = [
    .put(PutRecord(board: 7, playerID: "alice", score: 100, subscore: -3, sequence: 1_700_000_000_000_001, metadata: [1, 2, 3])),
    .put(PutRecord(board: .max, playerID: String(repeating: "x", count: 128), score: .min, subscore: .max,
        sequence: .max, metadata: Array(repeating: 0xAB, count: 4096))),
    .put(PutRecord(board: 0, playerID: "b", score: .max, subscore: .min, sequence: 0, metadata: [])),
    .remove(board: 7, playerID: "alice"),
    .clearBoard(board: 7),
]

/// Opens a data dir, recovers shard `shard` and opens its log.
func openShard(
    _ data: DataDirectory, shard: Int = 0, mode: DurabilityMode, options: ShardLog.Options = ShardLog.Options()
) throws -> (ShardLog, RecoveredShard) {
    let recovered = try ShardLog.recover(directory: data, shard: shard)
    let log = try ShardLog(directory: data, shard: shard, mode: mode, recovered: recovered.report, options: options)
    return (log, recovered)
}

func segmentPath(_ data: DataDirectory, shard: Int = 0, _ segment: UInt64) -> String {
    data.shardPath(shard) + "/" + ShardFiles.segmentName(segment)
}

func readBytes(_ path: String) -> [UInt8] { (try? POSIX.readFile(path)) ?? [] }

func writeBytes(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0o644)
    precondition(fd >= 0)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : -1
}

/// The file's inode number (-1 when it cannot be read): a rename over the path changes it.
func inodeNumber(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_ino) : -1
}
