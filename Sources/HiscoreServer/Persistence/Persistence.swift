import Foundation
import HiscoreCore
import HiscoreStorage

/// The server's durable state: the locked data directory and the board catalog (configs and
/// deletions, fsynced on every change). Each shard owns its own write-ahead log. In `memory` mode
/// there is nothing on disk.
final class Persistence: Sendable {
    let mode: DurabilityMode
    let directory: DataDirectory?
    private let catalog: BoardCatalog?
    /// The catalog's last record when it was opened (see `BoardCatalog.lastLoadedRecord`).
    var lastCatalogRecord: CatalogRecord? { catalog?.lastLoadedRecord }

    private init(mode: DurabilityMode, directory: DataDirectory?, catalog: BoardCatalog?) {
        self.mode = mode
        self.directory = directory
        self.catalog = catalog
    }

    /// Opens (and locks) the data directory, checks that it was written with `shards` shards
    /// (recording the count in a new one), and reads the catalog.
    static func open(path: String, mode: DurabilityMode, shards: Int) throws(StorageError) -> (Persistence, CatalogState, [String]) {
        guard mode != .memory else { return (Persistence(mode: mode, directory: nil, catalog: nil), CatalogState(), []) }
        let directory = try DataDirectory.open(path: path)
        do {
            try directory.adopt(shardCount: shards)
            let catalog = try BoardCatalog.open(directory: directory)
            return (Persistence(mode: mode, directory: directory, catalog: catalog), catalog.load(), catalog.warnings)
        } catch {
            directory.close()
            throw error
        }
    }

    func boardCreated(_ board: BoardHandle, at: Int64) throws(StorageError) {
        try catalog?.append(.created(incarnation: board.incarnation, config: board.config, createdAt: UInt64(max(0, at))))
    }

    /// A board whose season reset a crash cut short is live again: its `created` record, written
    /// anew, clears the stale `season` record, so that the revival does not depend on the
    /// catalog's shape at the next start (a board created meanwhile, say).
    func boardRevived(_ board: BoardHandle) throws(StorageError) {
        try catalog?.append(.created(
            incarnation: board.incarnation, config: board.config, createdAt: UInt64(max(0, board.periodStartedAt))))
    }

    /// A season reset: `current` archived as `periodID`, `live` created, `pruned` deleted, in one
    /// catalog write and fdatasync. A crash mid-write keeps a prefix (the rest is a torn tail), so
    /// the archive record goes first: a surviving `created` without it would make recovery take the
    /// new, empty incarnation as the live one and leave the old season's acknowledged entries out.
    func boardReset(
        live: BoardHandle, current: BoardHandle, periodID: UInt64, pruned: [BoardHandle], at: Int64
    ) throws(StorageError) {
        let time = UInt64(max(0, at))
        var records: [CatalogRecord] = [
            .season(incarnation: current.incarnation, periodID: periodID, at: time),
            .created(incarnation: live.incarnation, config: live.config, createdAt: time),
        ]
        let now = UInt64(Self.nowMicros())
        for old in pruned { records.append(.deleted(incarnation: old.incarnation, at: now)) }
        try catalog?.append(records)
    }

    /// A board and its archived periods deleted, in one catalog write and fdatasync: deleting
    /// them one append at a time left, after a crash (or a failed append) between two, archived
    /// periods of a board whose live incarnation was gone — an id that answered "not found" and
    /// could no longer be deleted. Archived periods go first and the live incarnation last, so a
    /// torn write keeps a prefix that still has the live board.
    func boardsDeleted(_ boards: [BoardHandle]) throws(StorageError) {
        let now = UInt64(Self.nowMicros())
        try catalog?.append(boards.map { .deleted(incarnation: $0.incarnation, at: now) })
    }

    func close() {
        catalog?.close()
        directory?.close()
    }

    static func nowMicros() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }
}
