#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HiscoreCore
@testable import HiscoreServer
@testable import HiscoreStorage
import HiscoreWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A shard copies its boards into a snapshot a chunk per loop turn and hands each chunk to the
/// snapshot's writer thread, which encodes and writes it. The copy runs at memory speed and the
/// file at disk speed: the shard waits while the writer holds `Shard.maxQueuedSnapshotChunks`
/// chunks it has not encoded, so a slow disk never queues most of a shard in memory.
///
/// A slow disk without a slow disk: the snapshot's temporary file is a FIFO, so its writer thread
/// blocks in `open` (its first step, before any chunk) until the test opens the other end.
@Suite("Snapshot writer back-pressure")
struct SnapshotBackpressureTests {
    @Test("a shard stops copying while its snapshot writer holds the maximum of unencoded chunks, and resumes once the writer takes them")
    func shardWaitsForItsSnapshotWriter() async throws {
        let queuedMax = Shard.maxQueuedSnapshotChunks
        let chunk = Shard.snapshotChunkEntries
        // The queued chunks hold ranks 0..<queuedMax*chunk; a few more entries are left over.
        let total = queuedMax * chunk + 16

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var quiet = Logger(label: "snapshot-backpressure")
        quiet.logLevel = .critical  // the snapshot into a FIFO fails at its fsync, and says so
        let shard = Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0), logger: quiet)
        let board = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        // Its operations name it without holding it.
        defer { withExtendedLifetime(board) {} }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-backpressure-\(UUID().uuidString)").path
        let data = try DataDirectory.open(path: path)
        defer {
            data.close()
            try? FileManager.default.removeItem(atPath: path)
        }
        do {
            try await loop.submit {
                try shard.assumeIsolated { shard in
                    _ = try shard.recover(
                        directory: data, boards: [board.incarnation: board], mode: .async, snapshotAfterLogBytes: .max)
                }
            }.get()
            /// Runs operations as one trip of the executor would (logged, and a snapshot asked
            /// for starts at its end); returns what each operation answered.
            func trip(_ operations: [ShardOperation]) async throws -> [String] {
                try await loop.submit {
                    shard.assumeIsolated { shard in
                        let trip = ShardTrip(shard: shard, origin: loop)
                        trip.operations = operations
                        shard.executeDurably(trip)
                        return trip.results.map { result in
                            switch result {
                            case .entries(let entries, _): entries.map(\.playerID).joined(separator: ",")
                            case .removed(let located): located?.entry.playerID ?? "nil"
                            default: "\(result)".prefix(40).description
                            }
                        }
                    }
                }.get()
            }

            let submits: [ShardOperation] = (0..<total).map { (index: Int) -> ShardOperation in
                ShardOperation.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: "p\(index)", score: Int64(index)))
            }
            _ = try await trip(submits)
            // The last entry of the last chunk the shard may queue, and the first one it must not.
            let firstHeldRank: Int = queuedMax * chunk
            let boundaryRanks: Range<Int> = (firstHeldRank - 1)..<(firstHeldRank + 1)
            let boundary = try await trip([ShardOperation.entriesAtRanks(BoardRef(board), range: boundaryRanks)])
            let ids = boundary[0].split(separator: ",").map(String.init)
            try #require(ids.count == 2)
            let (lastQueued, firstHeld) = (ids[0], ids[1])

            let shardPath = data.shardPath(0)
            let segment = (try ShardFiles.list(shardPath).segments.max() ?? 0) + 1
            let fifo = shardPath + "/" + ShardFiles.snapshotTempName(segment)
            try #require(mkfifo(fifo, 0o600) == 0, "mkfifo: errno \(errno)")

            _ = try await trip([.requestSnapshot])
            let running = shard.snapshotCounts.running.load(ordering: .relaxed)
            try #require(running, "the snapshot did not start")
            // Each chunk step is a task the previous one queued on the shard's loop, so every
            // round trip through the loop lets at least one more step run: more than enough
            // turns to copy every chunk and finish, had the shard not waited.
            for _ in 0..<(queuedMax + 4) { try await loop.submit {}.get() }

            // Changes behind the cursor are not in the snapshot; ahead of it, they are.
            let removed = try await trip([.remove(board, playerID: lastQueued), .remove(board, playerID: firstHeld)])
            #expect(removed == [lastQueued, firstHeld])

            // The disk catches up: the writer opens its file, takes the queued chunks, and the
            // shard copies the rest.
            let reader = FIFOReader(path: fifo, loop: loop, timeout: .seconds(30))
            let bytes = try await reader.bytes.get()
            var players: Set<String> = []
            let entryCount = try bytes.withUnsafeBytes { raw throws(StorageError) -> UInt64 in
                let verified = try SnapshotFormat.verify(raw, file: fifo, shard: 0, segment: segment)
                for range in verified.chunks {
                    var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[range]))
                    _ = reader.u8()
                    _ = reader.u64()
                    for _ in 0..<(reader.varint() ?? 0) {
                        guard let entry = SnapshotFormat.decodeEntry(&reader) else { break }
                        players.insert(entry.playerID)
                    }
                }
                return verified.entryCount
            }
            let (hasLastQueued, hasFirstHeld) = (players.contains(lastQueued), players.contains(firstHeld))
            #expect(hasLastQueued, "the shard copied fewer than \(queuedMax) chunks before waiting")
            #expect(!hasFirstHeld, "the shard copied past \(queuedMax) queued chunks while the writer took none")
            // Once the writer took the queued chunks the shard went on to the end of the board.
            let copied = players.count
            #expect(entryCount == UInt64(total - 1))
            #expect(copied == total - 1)
        } catch {
            Issue.record("\(error)")
        }
        try? await loop.submit { shard.assumeIsolated { $0.flushLog()?.close() } }.get()
        try await group.shutdownGracefully()
    }
}

extension SnapshotBackpressureTests {
    @Test("a snapshot still copying when the shard's log closes for shutdown is dropped: its thread ends, the loop need not run again")
    func shutdownDropsARunningSnapshot() async throws {
        let total = (Shard.maxQueuedSnapshotChunks + 2) * Shard.snapshotChunkEntries
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var quiet = Logger(label: "snapshot-shutdown")
        quiet.logLevel = .critical
        let shard = Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0), logger: quiet)
        let board = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        // Its operations name it without holding it.
        defer { withExtendedLifetime(board) {} }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-snapshot-shutdown-\(UUID().uuidString)").path
        let data = try DataDirectory.open(path: path)
        defer {
            data.close()
            try? FileManager.default.removeItem(atPath: path)
        }
        try await loop.submit {
            try shard.assumeIsolated { shard in
                _ = try shard.recover(directory: data, boards: [board.incarnation: board], mode: .async, snapshotAfterLogBytes: .max)
            }
        }.get()
        func trip(_ operations: [ShardOperation]) async throws {
            try await loop.submit {
                shard.assumeIsolated { shard in
                    let trip = ShardTrip(shard: shard, origin: loop)
                    trip.operations = operations
                    shard.executeDurably(trip)
                }
            }.get()
        }
        try await trip((0..<total).map { ShardOperation.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: "p\($0)", score: Int64($0))) })
        let shardPath = data.shardPath(0)
        let segment = (try ShardFiles.list(shardPath).segments.max() ?? 0) + 1
        let fifo = shardPath + "/" + ShardFiles.snapshotTempName(segment)
        try #require(mkfifo(fifo, 0o600) == 0, "mkfifo: errno \(errno)")
        try await trip([.requestSnapshot])
        let started = shard.snapshotCounts.running.load(ordering: .relaxed)
        try #require(started, "the snapshot did not start")
        // The writer is stuck in `open` (a slow disk); the shard has queued what it may.
        for _ in 0..<(Shard.maxQueuedSnapshotChunks + 4) { try await loop.submit {}.get() }

        try await loop.submit { shard.assumeIsolated { $0.closeLog() } }.get()
        let stillRunning = shard.snapshotCounts.running.load(ordering: .relaxed)
        #expect(!stillRunning)
        try await group.shutdownGracefully()

        // The disk comes back after the loop stopped: the writer takes its jobs and must find
        // the end among them, or it holds its file (and thread) forever.
        let readerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let reader = FIFOReader(path: fifo, loop: readerGroup.next(), timeout: .seconds(10))
        do {
            _ = try await reader.bytes.get()
        } catch {
            Issue.record("the snapshot's writer never closed its file: \(error)")
        }
        try await readerGroup.shutdownGracefully()
    }
}

/// Reads a FIFO to its end on a thread of its own: opening it lets its writer's `open` return,
/// and reading it keeps the writer's writes from blocking. `bytes` fails after `timeout`.
final class FIFOReader: Sendable {
    let bytes: EventLoopFuture<[UInt8]>

    init(path: String, loop: any EventLoop, timeout: TimeAmount) {
        let promise = loop.makePromise(of: [UInt8].self)
        bytes = promise.futureResult
        let opened = NIOLockedValueBox(false)
        let deadline = NIODeadline.now() + timeout
        // A reader blocked in `open` (no writer came) is let go by a writer of our own.
        let rescue = loop.scheduleTask(deadline: deadline) {
            guard !opened.withLockedValue({ $0 }) else { return }
            let fd = open(path, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
        }
        let thread = Thread {
            let fd = open(path, O_RDONLY)
            opened.withLockedValue { $0 = true }
            guard fd >= 0 else {
                promise.fail(FIFOReadError(reason: "open: errno \(errno)"))
                return
            }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    received += buffer[0..<count]
                } else if count == 0 {
                    // Every writer closed (the writer had opened: `open` waited for it).
                    rescue.cancel()
                    promise.succeed(received)
                    return
                } else if errno == EAGAIN || errno == EINTR {
                    guard NIODeadline.now() < deadline else {
                        promise.fail(FIFOReadError(reason: "no end of file within the timeout (\(received.count) bytes read)"))
                        return
                    }
                    // Wait for bytes; the writer's close shows as a read of 0, which poll does not
                    // always announce (no POLLHUP for a writer that opened before this reader).
                    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&poller, 1, 100)
                } else {
                    promise.fail(FIFOReadError(reason: "read: errno \(errno)"))
                    return
                }
            }
        }
        thread.start()
    }
}

struct FIFOReadError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
