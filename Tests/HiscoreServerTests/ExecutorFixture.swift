import Foundation
@testable import HiscoreServer
import HiscoreCore
import HiscoreStorage
import HiscoreWire
import NIOCore
import NIOPosix

/// What tests that drive the executor directly need: shards on event loops of their own, their
/// executor, and a board "b" split over every shard. `shutdown()` stops the loops.
struct ExecutorFixture {
    let group: MultiThreadedEventLoopGroup
    let loops: [any EventLoop]
    let shards: [Shard]
    let executor: BatchExecutor
    let board: BoardHandle

    init(shardCount: Int, writesWaitForDurability: Bool = false) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: shardCount)
        let loops = Array(group.makeIterator())
        self.loops = loops
        let memory = MemoryCeiling(limitBytes: 0)
        shards = loops.enumerated().map { Shard(index: $0.offset, loop: $0.element, memory: memory) }
        executor = BatchExecutor(shards: shards, writesWaitForDurability: writesWaitForDurability)
        board = try BoardDirectory(shardCount: shardCount, maxBoards: 10).boardCreatingDefault("b")
    }

    /// Runs each batch on `loop` (shard 0's) in one pass (one round), with a receiver per batch;
    /// `firstAnswered` is called on the loop at the first answer to call `watch` (0: none).
    /// Returns every call's answer once all receivers are done.
    func runRound(
        _ batches: [[PlannedCall]], watch: UInt64 = 0,
        firstAnswered: @escaping ([UInt64: ResponseEnvelope]) -> Void = { _ in }
    ) async throws -> [UInt64: ResponseEnvelope] {
        let (executor, loop) = (self.executor, self.loop)
        let done = loop.makePromise(of: [UInt64: ResponseEnvelope].self)
        loop.execute {
            var answers: [UInt64: ResponseEnvelope] = [:]
            var finished = 0
            for batch in batches {
                executor.run(batch, on: loop, receiver: ClosureBatchReceiver(
                    deliver: { answer in
                        answers[answer.callID] = answer
                        if answer.callID == watch { firstAnswered(answers) }
                    },
                    finished: {
                        finished += 1
                        if finished == batches.count { done.succeed(answers) }
                    }))
            }
        }
        return try await done.futureResult.get()
    }

    /// The loop the tests hand batches over on (shard 0's).
    var loop: any EventLoop { loops[0] }

    func shutdown() async throws { try await group.shutdownGracefully() }

    /// Gives every shard a log (fsync mode unless `mode` says otherwise) in a fresh data directory, then closes the logs of the
    /// shards `failing` names: every later durability promise of theirs fails. The returned
    /// directory is removed by its `remove()`.
    func openFsyncLogs(
        mode: DurabilityMode = .fsync, options: ShardLog.Options = ShardLog.Options(), failing: @escaping @Sendable (Int) -> Bool
    ) async throws -> FsyncLogs {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-executor-\(UUID().uuidString)").path
        let data = try DataDirectory.open(path: path)
        let board = board
        for shard in shards {
            try await shard.loop.submit {
                try shard.assumeIsolated { shard in
                    _ = try shard.recover(
                        directory: data, boards: [board.incarnation: board], mode: mode, snapshotAfterLogBytes: .max, logOptions: options)
                    if failing(shard.index) { shard.flushLog()?.close() }
                }
            }.get()
        }
        return FsyncLogs(data: data, path: path)
    }

    struct FsyncLogs {
        let data: DataDirectory
        let path: String

        func remove() {
            data.close()
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
