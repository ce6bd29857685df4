#if canImport(Glibc)
import Glibc
#endif
import Atomics
import HiscoreStorage
import HiscoreWire
import NIOCore
import NIOPosix

/// `backup`: an online, consistent copy of the data directory on the server's machine. Every
/// shard's log is flushed first (so async mode's acknowledged writes are in it), then the files
/// are hard-linked or copied on NIO's blocking-work thread pool — never on an event loop, nor on
/// Swift's cooperative threads (one per core: a long copy there would hold up `/metrics` and
/// season resets). One backup at a time; another meanwhile is refused.
final class BackupService: Sendable {
    private let persistence: Persistence
    private let shards: [Shard]
    private let running = ManagedAtomic(false)

    init(persistence: Persistence, shards: [Shard]) {
        self.persistence = persistence
        self.shards = shards
    }

    func run(callID: UInt64, destination: String, on loop: any EventLoop) -> EventLoopFuture<ResponseEnvelope> {
        guard let directory = persistence.directory else {
            return loop.makeSucceededFuture(.failure(callID: callID, Status(
                .failedPrecondition, "this server runs with --durability memory: there is no data dir to back up")))
        }
        guard !destination.isEmpty else {
            return loop.makeSucceededFuture(.failure(callID: callID, Status(.invalidArgument, "destination: empty")))
        }
        // A relative path would be taken from the server's working directory, which the caller
        // (a CLI in another directory, or on another machine) does not know.
        guard destination.hasPrefix("/") else {
            return loop.makeSucceededFuture(.failure(callID: callID, Status(
                .invalidArgument,
                "destination: '\(destination)' is relative; give an absolute path on the server's machine")))
        }
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return loop.makeSucceededFuture(.failure(callID: callID, Status(
                .failedPrecondition, "a backup is already running; try again when it has finished")))
        }
        let running = self.running
        let flushed = shards.map { shard in
            let promise = loop.makePromise(of: Void.self)
            shard.loop.execute {
                shard.assumeIsolated { shard in
                    guard let log = shard.flushLog() else { return promise.succeed() }
                    // A log that cannot flush would make a backup missing acknowledged writes.
                    log.flush { result in promise.completeWith(result.mapError { $0 as any Error }) }
                }
            }
            return promise.futureResult
        }
        return EventLoopFuture.andAllSucceed(flushed, on: loop).flatMap {
            NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () -> ResponseEnvelope in
                do throws(StorageError) {
                    let summary = try directory.backup(to: destination)
                    return .ok(callID, .backup(BackupResponse(
                        destination: destination, files: UInt64(summary.files), linkedFiles: UInt64(summary.linkedFiles),
                        copiedBytes: summary.copiedBytes)))
                } catch {
                    return .failure(callID: callID, Status(.failedPrecondition, Self.failureMessage(error, destination: destination)))
                }
            }
        }.recover { error in
            .failure(callID: callID, Status(.unavailable, "backup not made: a shard's log could not be flushed: \(error)"))
        }.always { _ in
            running.store(false, ordering: .releasing)
        }
    }

    /// What a failed backup answers. The backup removed what it had made (`DataDirectory.backup`),
    /// so the same destination can be used again; a full disk says what needs the space.
    static func failureMessage(_ error: StorageError, destination: String) -> String {
        if case .io(_, _, let code) = error, code == ENOSPC || code == EDQUOT {
            return "backup failed: no space left for it (\(error)); the partial copy in \(destination) was removed. "
                + "A backup needs free space on the destination's file system for every file it copies rather than "
                + "hard-links: each shard's newest log segment and boards.log, and every file when the destination is on "
                + "another file system than the data dir. Free space (or choose another destination) and try again"
        }
        if case .destinationNotEmpty = error { return "backup failed: \(error)" }
        return "backup failed: \(error); the partial copy in \(destination) was removed"
    }
}
