#if canImport(Glibc)
import Glibc
#endif

/// The server's data directory:
///
///     FORMAT          "hiscore-data 2\n": the layout version, checked before anything else (2:
///                     log segments begin with a header keying their frames' CRCs,
///                     `SegmentHeader`; a format-1 data dir is read as it is and marked 2 once
///                     recovered (`markCurrentFormat`), so that an older build refuses it
///                     rather than misread new segments)
///     SHARDS          "N\n": the shard count the data was written with (players sit on shard
///                     hash(id) mod N, so another count would misplace every one of them)
///     LOCK            exclusive flock while a server runs; holds its pid (for the error message)
///     boards.log      the board catalog (BoardCatalog)
///     shard-NNN/      one per shard: wal-*.log segments and snapshot-*.snap (ShardLog)
///
/// The lock is an `flock` on an open file description: it dies with the process (a SIGKILLed
/// server never leaves a stale lock), and two opens conflict even within one process.
public final class DataDirectory: @unchecked Sendable {
    /// The layout version this build reads and writes.
    public static let formatVersion = 2
    static let formatPrefix = "hiscore-data "

    public let path: String
    private var lockFD: Int32
    private let closeLock = ConditionLock()
    /// Serializes file deletions (snapshot publication) with backups.
    let maintenanceLock = ConditionLock()

    public var catalogPath: String { path + "/boards.log" }

    /// The directory of shard `shard` (created by `ShardLog` when first opened).
    public func shardPath(_ shard: Int) -> String { path + "/" + ShardFiles.directoryName(shard: shard) }

    /// The format FORMAT named when the directory was opened (this build's for a new one).
    private let openedFormat: Int

    private init(path: String, lockFD: Int32, openedFormat: Int) {
        self.path = path
        self.lockFD = lockFD
        self.openedFormat = openedFormat
    }

    /// Marks the data dir as of this build's format, once what it holds was read: the server
    /// calls it after recovery, before its first write. Not when it is opened: a data dir whose
    /// recovery then fails stays readable by the build that wrote it. The log segments opened
    /// during recovery hold no record before this (a build that knows only format 1 would cut
    /// such a segment as a torn tail, losing nothing).
    public func markCurrentFormat() throws(StorageError) {
        guard openedFormat != Self.formatVersion else { return }
        try POSIX.writeFileAtomically(path + "/FORMAT", directory: path, Array("\(Self.formatPrefix)\(Self.formatVersion)\n".utf8))
    }

    static let shardsFileName = "SHARDS"

    /// The shard count this data directory was written with: its SHARDS file, or, for a data
    /// directory from before that file existed, one past the highest `shard-NNN` directory; nil
    /// for a new (or missing) data directory. Read without the lock: for choosing a default.
    public static func recordedShardCount(path: String) throws(StorageError) -> Int? {
        let shardsPath = path + "/" + shardsFileName
        if POSIX.exists(shardsPath) {
            let text = String(decoding: try POSIX.readFile(shardsPath), as: UTF8.self).trimmingWhitespace()
            guard let count = Int(text), count >= 1 else {
                throw .notADataDirectory(path: path, reason: "\(shardsFileName) says \"\(text.prefix(40))\", expected a shard count")
            }
            return count
        }
        guard POSIX.isDirectory(path) else { return nil }
        var highest: Int?
        for name in try POSIX.listDirectory(path) where name.hasPrefix("shard-") {
            if let index = Int(name.dropFirst("shard-".count)), index >= 0, ShardFiles.directoryName(shard: index) == name {
                highest = max(highest ?? 0, index)
            }
        }
        return highest.map { $0 + 1 }
    }

    /// Checks that this data directory was written with `shardCount` shards (or records it, for
    /// a new data directory or one from before SHARDS existed). Throws `shardCountMismatch`
    /// otherwise: players are placed on shards by a hash of their id modulo the count, so data
    /// written with one count read with another would duplicate players and hide boards.
    public func adopt(shardCount: Int) throws(StorageError) {
        let recorded = try Self.recordedShardCount(path: path)
        if let recorded, recorded != shardCount {
            throw .shardCountMismatch(path: path, recorded: recorded, requested: shardCount)
        }
        if !POSIX.exists(path + "/" + Self.shardsFileName) {
            try POSIX.writeFileAtomically(path + "/" + Self.shardsFileName, directory: path, Array("\(shardCount)\n".utf8))
        }
    }

    /// Opens (creating it when missing) and locks a data directory.
    public static func open(path: String) throws(StorageError) -> DataDirectory {
        let path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        if !POSIX.exists(path) {
            try makeDirectories(path)
        }
        guard POSIX.isDirectory(path) else { throw .notADataDirectory(path: path, reason: "not a directory") }

        // Check the format before creating anything in a directory that may not be ours.
        let formatPath = path + "/FORMAT"
        let foundVersion = try checkFormat(formatPath, directory: path)
        let hasFormat = foundVersion != nil
        if !hasFormat {
            let foreign = try POSIX.listDirectory(path).filter { $0 != "LOCK" && $0 != "FORMAT.tmp" }
            if !foreign.isEmpty {
                throw .notADataDirectory(
                    path: path, reason: "no FORMAT file, and it holds \(foreign.count) other entries, e.g. \(foreign.sorted()[0])")
            }
        }

        let lockPath = path + "/LOCK"
        let fd = try POSIX.open(lockPath, O_RDWR | O_CREAT)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            defer { POSIX.close(fd) }
            if code == EWOULDBLOCK {
                let text = (try? POSIX.readAll(fd, path: lockPath, limit: 64)) ?? []
                let pid = Int32(String(decoding: text, as: UTF8.self).trimmingWhitespace())
                throw .locked(path: path, pid: pid)
            }
            throw .io(operation: "flock", path: lockPath, errno: code)
        }
        let directory = DataDirectory(path: path, lockFD: fd, openedFormat: foundVersion ?? formatVersion)
        let pidText = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pidText.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }

        if foundVersion == nil {
            try POSIX.writeFileAtomically(formatPath, directory: path, Array("\(formatPrefix)\(formatVersion)\n".utf8))
        }
        return directory
    }

    /// The version FORMAT names when it exists and this build reads it (nil: no FORMAT); throws
    /// when this build cannot read it.
    private static func checkFormat(_ formatPath: String, directory: String) throws(StorageError) -> Int? {
        guard POSIX.exists(formatPath) else { return nil }
        let text = String(decoding: try POSIX.readFile(formatPath), as: UTF8.self).trimmingWhitespace()
        guard text.hasPrefix(formatPrefix), let version = Int(text.dropFirst(formatPrefix.count)), version >= 1 else {
            throw .notADataDirectory(path: directory, reason: "FORMAT says \"\(text.prefix(40))\", expected \"\(formatPrefix)\(formatVersion)\"")
        }
        if version > formatVersion {
            throw .newerFormat(file: formatPath, found: version, supported: formatVersion)
        }
        return version
    }

    private static func makeDirectories(_ path: String) throws(StorageError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if !POSIX.isDirectory(prefix) {
                try POSIX.makeDirectory(prefix)
            }
        }
        let parent = path.split(separator: "/").dropLast().joined(separator: "/")
        try POSIX.fsyncDirectory(path.hasPrefix("/") ? "/" + parent : (parent.isEmpty ? "." : parent))
    }

    /// Releases the lock. Idempotent; also done by `deinit` and, implicitly, by process exit.
    public func close() {
        closeLock.withLock {
            if lockFD >= 0 {
                _ = flock(lockFD, LOCK_UN)
                POSIX.close(lockFD)
                lockFD = -1
            }
        }
    }

    deinit { close() }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[start...end])
    }
}
