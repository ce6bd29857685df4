import Atomics
import HiscoreCore
import HiscoreStorage
import Logging

/// The server's durable state: the locked data directory and the board catalog (configs and
/// deletions, fsynced on every change). Each shard owns its own write-ahead log. In `memory` mode
/// there is nothing on disk.
final class Persistence: Sendable {
    let mode: DurabilityMode
    let directory: DataDirectory?
    private let catalog: BoardCatalog?
    private let logger: Logger
    /// Whether the last catalog append failed (its error was logged; the next success says so).
    private let catalogFailing = ManagedAtomic(false)
    /// Whether the catalog's poisoning was logged (once).
    private let catalogFailureLogged = ManagedAtomic(false)
    /// The catalog's last record when it was opened (see `BoardCatalog.lastLoadedRecord`).
    var lastCatalogRecord: CatalogRecord? { catalog?.lastLoadedRecord }
    /// Why the catalog refuses every change until a restart, if it does (a failed fdatasync, or a
    /// failed write that could not be cut back): board creations, deletions and season resets
    /// get UNAVAILABLE, and `/readyz` says so.
    var catalogFailure: StorageError? { catalog?.failure }

    private init(mode: DurabilityMode, directory: DataDirectory?, catalog: BoardCatalog?, logger: Logger) {
        self.mode = mode
        self.directory = directory
        self.catalog = catalog
        self.logger = logger
    }

    /// Opens (and locks) the data directory, checks that it was written with `shards` shards
    /// (recording the count in a new one), and reads the catalog. Returns the catalog's warnings
    /// (a torn tail cut, a compaction that could not be made) for the caller to log.
    static func open(
        path: String, mode: DurabilityMode, shards: Int, logger: Logger = Logger(label: "hiscored")
    ) throws(StorageError) -> (Persistence, CatalogState, [String]) {
        guard mode != .memory else {
            return (Persistence(mode: mode, directory: nil, catalog: nil, logger: logger), CatalogState(), [])
        }
        let directory = try DataDirectory.open(path: path)
        do {
            try directory.adopt(shardCount: shards)
            let catalog = try BoardCatalog.open(directory: directory)
            return (Persistence(mode: mode, directory: directory, catalog: catalog, logger: logger), catalog.load(), catalog.warnings)
        } catch {
            directory.close()
            throw error
        }
    }

    /// Appends to the catalog and logs what the operator must know: a failed append (once until
    /// one succeeds again: a client retrying into a full disk logs one line), and the catalog's
    /// poisoning (once).
    private func record(_ records: [CatalogRecord]) throws(StorageError) {
        guard let catalog else { return }
        // A compaction after a successful append can poison the catalog too.
        defer { logPoisoning(catalog) }
        do throws(StorageError) {
            try catalog.append(records)
        } catch {
            if catalog.failure == nil, !catalogFailing.exchange(true, ordering: .relaxed) {
                logger.error(
                    "board catalog \(catalog.path): a change could not be recorded (\(error)); the file was cut back and the change refused. Board creations, deletions and season resets fail until the cause is gone (a full disk: free space, no restart needed)")
            }
            throw error
        }
        if catalogFailing.exchange(false, ordering: .relaxed) {
            logger.info("board catalog \(catalog.path): changes are recorded again")
        }
    }

    private func logPoisoning(_ catalog: BoardCatalog) {
        guard let failure = catalog.failure,
            catalogFailureLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        else { return }
        logger.error(
            "board catalog \(catalog.path) failed (\(failure)); board creations, deletions and season resets are refused until hiscored is restarted (/readyz answers 503)")
    }

    func boardCreated(_ board: BoardHandle, at: Int64) throws(StorageError) {
        try record([.created(incarnation: board.incarnation, config: board.config, createdAt: UInt64(max(0, at)))])
    }

    /// A board whose season reset a crash cut short is live again: its `created` record, written
    /// anew, clears the stale `season` record, so that the revival does not depend on the
    /// catalog's shape at the next start (a board created meanwhile, say).
    func boardRevived(_ board: BoardHandle) throws(StorageError) {
        try record([.created(
            incarnation: board.incarnation, config: board.config, createdAt: UInt64(max(0, board.periodStartedAt)))])
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
        try record(records)
    }

    /// A board and its archived periods deleted, in one catalog write and fdatasync: deleting
    /// them one append at a time left, after a crash (or a failed append) between two, archived
    /// periods of a board whose live incarnation was gone — an id that answered "not found" and
    /// could no longer be deleted. Archived periods go first and the live incarnation last, so a
    /// torn write keeps a prefix that still has the live board.
    func boardsDeleted(_ boards: [BoardHandle]) throws(StorageError) {
        let now = UInt64(Self.nowMicros())
        try record(boards.map { .deleted(incarnation: $0.incarnation, at: now) })
    }

    func close() {
        catalog?.close()
        directory?.close()
    }

    static func nowMicros() -> Int64 { Int64(SequenceClock.nowMicros()) }
}
