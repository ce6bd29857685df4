#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong in the durability layer.
///
/// Each `description` names the file involved and says what the operator can do about it: these
/// messages are printed verbatim by `hiscored` when it refuses to start, so they must stand alone.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed (`errno` as reported by the kernel).
    case io(operation: String, path: String, errno: Int32)
    /// Another process (or another `DataDirectory` in this process) holds the data dir's `LOCK`.
    case locked(path: String, pid: Int32?)
    /// The data dir was written by a newer hiscored whose format this build does not understand.
    case newerFormat(file: String, found: Int, supported: Int)
    /// The directory exists, is not empty and has no (valid) `FORMAT` file.
    case notADataDirectory(path: String, reason: String)
    /// A record that is not a torn tail failed its CRC or could not be decoded.
    case corruptLog(file: String, offset: UInt64, reason: String)
    /// A snapshot failed verification (checksum, structure or truncation).
    case corruptSnapshot(file: String, reason: String)
    /// Files the recovery needs are missing (e.g. a segment between a snapshot and the newest segment).
    case missingFiles(directory: String, reason: String)
    /// A write or fsync of the log failed earlier; the log refuses further durability promises.
    case logFailed(reason: String)
    /// The log or catalog was closed.
    case closed
    /// A backup destination that already holds files.
    case destinationNotEmpty(path: String)
    /// The data dir was written with `recorded` shards and the server was started with another count.
    case shardCountMismatch(path: String, recorded: Int, requested: Int)

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .locked(let path, let pid):
            let who = pid.map { "pid \($0)" } ?? "unknown pid"
            return "data dir \(path) is in use by another hiscored (\(who)); stop it or use another --data-dir"
        case .newerFormat(let file, let found, let supported):
            return "\(file) says data format \(found), but this hiscored understands format \(supported) only; "
                + "run a newer hiscored that supports data format \(found) (do not edit FORMAT by hand)"
        case .notADataDirectory(let path, let reason):
            return "\(path) is not a hiscore data dir (\(reason)); point --data-dir at an empty or hiscore directory"
        case .corruptLog(let file, let offset, let reason):
            return "log \(file) is corrupt at offset \(offset): \(reason); hiscored will not start with a corrupt "
                + "log because dropping records silently would lose acknowledged writes. The way out: restore the "
                + "data dir from a backup (see docs/durability.md)"
        case .corruptSnapshot(let file, let reason):
            return "snapshot \(file) is corrupt (\(reason)); the way out: restore the data dir from a backup, or "
                + "move the file away to recover from the log alone if all its segments are still present"
        case .missingFiles(let directory, let reason):
            return "\(directory): \(reason); the way out: restore the data dir from a backup"
        case .logFailed(let reason):
            return "write-ahead log failed: \(reason); no further writes can be made durable, restart hiscored"
        case .closed:
            return "the log is closed"
        case .destinationNotEmpty(let path):
            return "backup destination \(path) exists and is not empty; choose a new directory"
        case .shardCountMismatch(let path, let recorded, let requested):
            return "data dir \(path) was written with \(recorded) shards, and this hiscored was started with --shards "
                + "\(requested); players are placed on shards by a hash of their id modulo the shard count, so the data "
                + "cannot be read with another count. Start with --shards \(recorded) (the default follows the data dir), "
                + "or export the boards (hiscore export) and submit them to a fresh data dir"
        }
    }
}
