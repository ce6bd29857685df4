#if canImport(Glibc)
import Glibc
#endif

/// The board catalog: `boards.log`, an append-only log of board lifecycle records, framed and
/// checked like the shard logs (same torn-tail and corruption rules) and fdatasynced on every
/// append — board creations and deletions are rare and must be durable before they are
/// acknowledged (a shard record naming an unknown incarnation would be meaningless).
///
/// Compaction: on open, a file larger than `compactAboveBytes` is rewritten to the live state (a
/// high-water mark, then created + season records of live boards) via temp file, fsync, rename,
/// dir fsync. While open, an append that takes the file past `compactAboveBytes` and past twice
/// its size after the last compaction rewrites it the same way when at least half of it is dead
/// records: a server creating and deleting boards for months (a board per match, say) keeps a
/// file of about its live boards' size rather than one record per board it ever had. The
/// append's own records are durable first; a rewrite that fails before its rename leaves the old
/// file in use (and is tried again at the next threshold), one that fails after it poisons the
/// catalog like a failed fdatasync. A compaction on open that fails (a full disk) is a warning:
/// the uncompacted file stays in use.
///
/// Thread-safe (one internal mutex); `append` blocks for one fdatasync.
public final class BoardCatalog: @unchecked Sendable {
    public static let defaultCompactAboveBytes = 1 << 20

    public let path: String
    /// Torn tails cut while opening; the server logs them.
    public let warnings: [String]
    /// The last record the file held when it was opened (before any compaction): a `season`
    /// record there is a season reset whose `created` record a crash cut off.
    public let lastLoadedRecord: CatalogRecord?
    private let directoryPath: String
    private let lock = ConditionLock()
    private var fd: Int32
    private var state: CatalogState
    private let compactAboveBytes: Int
    /// The file's size (what the appends wrote, after the last compaction's rewrite).
    private var fileBytes: Int
    /// An append taking `fileBytes` past this looks at compacting.
    private var compactionThreshold: Int
    /// Set when the file may no longer hold what the appends acknowledged (a failed fdatasync, a
    /// write that could not be cut back, a compaction's lost directory entry); every later append
    /// throws it.
    private var poisoned: StorageError?

    /// Why the catalog refuses every append until a restart, if it does (see `append`).
    public var failure: StorageError? { lock.withLock { poisoned } }

    private init(
        path: String, directoryPath: String, fd: Int32, state: CatalogState, warnings: [String], lastLoadedRecord: CatalogRecord?,
        fileBytes: Int, compactAboveBytes: Int
    ) {
        self.path = path
        self.directoryPath = directoryPath
        self.fd = fd
        self.state = state
        self.fileBytes = fileBytes
        self.compactAboveBytes = compactAboveBytes
        self.compactionThreshold = max(compactAboveBytes, 2 * fileBytes)
        self.warnings = warnings
        self.lastLoadedRecord = lastLoadedRecord
    }

    /// Reads (cutting a torn tail), compacts when large, and opens `boards.log` for appending.
    public static func open(
        directory: DataDirectory, compactAboveBytes: Int = defaultCompactAboveBytes
    ) throws(StorageError) -> BoardCatalog {
        let path = directory.catalogPath
        var state = CatalogState()
        var warnings: [String] = []
        var lastRecord: CatalogRecord?
        var size = 0
        if POSIX.exists(path) {
            let file = try MappedFile(path: path)
            var highWater: UInt64 = 0
            let scan = try FramedFileScan.scan(file.bytes, file: path, isLast: true) { payload, _ in
                switch CatalogCoding.decode(payload) {
                case .record(let record)?:
                    state.apply(record)
                    lastRecord = record
                case .highWater(let mark)?: highWater = max(highWater, mark)
                case nil: return false
                }
                return true
            }
            state.highestIncarnation = max(state.highestIncarnation, highWater)
            size = scan.validEnd
            if let torn = scan.tornTail {
                try ShardLog.truncate(path, to: scan.validEnd)
                warnings.append(torn)
            }
        }
        // A `season` record last is a reset cut short by a crash (its `created` record never
        // made it): start-up revives the board from that, as the catalog's last record, and
        // appends the revival. Compacted first, the file would no longer end with it, and a crash
        // before the revival's append would leave the board archived at the next start, its live
        // period's acknowledged entries on no live board. The next start compacts.
        var resetCutShort = false
        if case .season? = lastRecord { resetCutShort = true }
        if size > compactAboveBytes && !resetCutShort {
            let compacted = compactedBytes(state)
            do throws(StorageError) {
                try POSIX.writeFileAtomically(path, directory: directory.path, compacted)
            } catch {
                // A full disk has no room for the temporary file. The old file is whole and holds
                // the same boards: start on it (the running server tries again when it doubles).
                warnings.append(
                    "\(path): not compacted (\(error)); the uncompacted file (\(size) bytes) stays in use, "
                        + "compaction is tried again at the next start or when the file has doubled")
            }
        }
        let fd = try POSIX.open(path, O_WRONLY | O_CREAT | O_APPEND)
        do throws(StorageError) {
            // The compacted file, or the old one when the compaction failed before its rename.
            size = try POSIX.fileSize(fd, path: path)
            // What the scan read may exist only in the page cache (a crash between an append's
            // write and its fdatasync): make it durable before boards go live and incarnations are
            // handed out on the strength of it.
            try POSIX.fdatasync(fd, path: path)
            try POSIX.fsyncDirectory(directory.path)
        } catch {
            POSIX.close(fd)
            throw error
        }
        return BoardCatalog(
            path: path, directoryPath: directory.path, fd: fd, state: state, warnings: warnings, lastLoadedRecord: lastRecord,
            fileBytes: size, compactAboveBytes: compactAboveBytes)
    }

    /// The live state as a catalog file: the high-water mark, then each live board's created and
    /// season records, oldest incarnation first.
    private static func compactedBytes(_ state: CatalogState) -> [UInt8] {
        var bytes: [UInt8] = []
        Frame.append(to: &bytes) { CatalogCoding.encode(.highWater(state.highestIncarnation), into: &$0) }
        for board in state.boards.values.sorted(by: { $0.incarnation < $1.incarnation }) {
            let created = CatalogRecord.created(incarnation: board.incarnation, config: board.config, createdAt: board.createdAt)
            Frame.append(to: &bytes) { CatalogCoding.encode(.record(created), into: &$0) }
            for season in board.seasons {
                let record = CatalogRecord.season(incarnation: board.incarnation, periodID: season.periodID, at: season.at)
                Frame.append(to: &bytes) { CatalogCoding.encode(.record(record), into: &$0) }
            }
        }
        return bytes
    }

    /// Rewrites the file to the live state if at least half of it is dead records (see the type's
    /// comment). Called with the lock held, after an append made its records durable.
    private func compactIfWorthIt() {
        let compacted = Self.compactedBytes(state)
        guard compacted.count * 2 <= fileBytes else {
            // Mostly live boards: look again once the file has doubled.
            compactionThreshold = max(compactAboveBytes, 2 * fileBytes)
            return
        }
        let temporary = path + ".tmp"
        let newFD: Int32
        do throws(StorageError) {
            newFD = try POSIX.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND)
            do throws(StorageError) {
                try POSIX.writeAll(newFD, compacted, path: temporary)
                try POSIX.fsync(newFD, path: temporary)
                try POSIX.rename(temporary, path)
            } catch {
                POSIX.close(newFD)
                throw error
            }
        } catch {
            // The old file is still the catalog, whole and in use: try again at the next threshold.
            try? POSIX.unlink(temporary)
            compactionThreshold = max(compactAboveBytes, 2 * fileBytes)
            return
        }
        POSIX.close(fd)
        fd = newFD
        fileBytes = compacted.count
        compactionThreshold = max(compactAboveBytes, 2 * fileBytes)
        do throws(StorageError) {
            try POSIX.fsyncDirectory(directoryPath)
        } catch {
            // A crash could bring back the old file, which lacks every later append.
            poisoned = Self.poisonedError(error)
        }
    }

    /// Appends `record` and fdatasyncs it; when this returns, the record survives any crash.
    public func append(_ record: CatalogRecord) throws(StorageError) {
        try append([record])
    }

    /// Appends `records` in one write and one fdatasync: a crash keeps all of them or none of the
    /// last ones (a torn tail), never a later one without an earlier one. A season reset writes
    /// its new incarnation, the archived one and any pruned ones this way.
    ///
    /// A failed write (a full disk, say) cuts the file back to where the append started and
    /// throws; the catalog stays usable, and the next append (once space is freed) works. The
    /// catalog is *poisoned* — this append and every later one throw, until a restart — when the
    /// cut-back fails (half a frame left behind would make the next good append look like
    /// corruption at the next start) or when the fdatasync fails (a retried one may report
    /// success falsely: the kernel reports a lost write-back once). `failure` says why.
    public func append(_ records: [CatalogRecord]) throws(StorageError) {
        var bytes: [UInt8] = []
        for record in records {
            Frame.append(to: &bytes) { CatalogCoding.encode(.record(record), into: &$0) }
        }
        try lock.withLock { () throws(StorageError) in
            if let poisoned { throw poisoned }
            guard fd >= 0 else { throw .closed }
            let start = try POSIX.fileSize(fd, path: path)
            do throws(StorageError) {
                try POSIX.writeAll(fd, bytes, path: path)
            } catch {
                do throws(StorageError) {
                    try POSIX.truncate(fd, to: start, path: path)
                } catch let cutBack {
                    poisoned = Self.poisonedError(error, cutBack: cutBack)
                }
                throw error
            }
            do throws(StorageError) {
                try POSIX.fdatasync(fd, path: path)
            } catch {
                // Cut back all the same (the file should not show records that were refused),
                // but the catalog cannot be trusted with an fdatasync again.
                try? POSIX.truncate(fd, to: start, path: path)
                poisoned = Self.poisonedError(error)
                throw error
            }
            for record in records { state.apply(record) }
            fileBytes += bytes.count
            if fileBytes > compactionThreshold { compactIfWorthIt() }
        }
    }

    /// What every append of a poisoned catalog throws: a `logFailed`, whose description reads
    /// "write-ahead log failed: the board catalog failed earlier (<cause>); no further writes can
    /// be made durable, restart hiscored" — the server's "cannot record … durably" answers carry
    /// it, rather than repeating a stale errno as if the disk were still full.
    private static func poisonedError(_ error: StorageError, cutBack: StorageError? = nil) -> StorageError {
        let cause = cutBack.map { "\(error), and cutting the file back failed: \($0)" } ?? "\(error)"
        return .logFailed(reason: "the board catalog failed earlier (\(cause))")
    }

    /// The live boards (with their season history) and the incarnation high-water mark.
    public func load() -> CatalogState {
        lock.withLock { state }
    }

    public func close() {
        lock.withLock {
            if fd >= 0 {
                POSIX.close(fd)
                fd = -1
            }
        }
    }

    deinit {
        if fd >= 0 { POSIX.close(fd) }
    }
}
