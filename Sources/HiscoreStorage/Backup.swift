#if canImport(Glibc)
import Glibc
#endif

/// Online backup.
///
/// "Consistent" means: every write acknowledged before the backup started is in the backup, and
/// the backup recovers like a data dir after a crash (at most a torn tail, cut with a warning).
/// In `.fsync` mode acknowledged writes are already durable; in `.async` mode call
/// `ShardLog.flush`/`flushAndWait` on every shard first. Writes acknowledged while the backup runs
/// may or may not be in it, independently per shard: it is not a cross-shard point in time.
///
/// How: per shard, the newest snapshot and every segment from it on. Snapshots and finished
/// segments never change again, so they are hard-linked (instant, no space) unless
/// `hardLinks` is false or the destination is on another file system, where they are copied.
/// The newest segment is still being appended, so it is copied up to its current length — a
/// record being written at that moment becomes a torn tail of the copy. Snapshot publication
/// (which deletes old files) is held off while the shard files are linked. The catalog is copied
/// last, so every board the shard files mention is in it.
///
/// Hard links share the disk with the live data: to survive a disk failure, copy the backup
/// elsewhere (it is a plain directory; `cp -a` or `rsync` are fine once `backup` returned).
///
/// A backup that fails (a full disk, say) removes what it had made: the files it wrote, the shard
/// directories, and the destination itself when it created it. A partial copy on the data disk
/// would keep taking the space the live logs need, and would make a retry into the same
/// directory fail as "not empty".
extension DataDirectory {
    public struct BackupSummary: Sendable, Equatable {
        public var files: Int
        public var linkedFiles: Int
        public var copiedBytes: UInt64
    }

    public func backup(to destination: String, hardLinks: Bool = true) throws(StorageError) -> BackupSummary {
        // What this backup made, in order: removed again (newest first) if it fails.
        var made: [String] = []
        if POSIX.exists(destination) {
            guard POSIX.isDirectory(destination), try POSIX.listDirectory(destination).isEmpty else {
                throw .destinationNotEmpty(path: destination)
            }
        } else {
            try POSIX.makeDirectory(destination)
            made.append(destination)
        }
        do throws(StorageError) {
            return try copy(to: destination, hardLinks: hardLinks, made: &made)
        } catch {
            // Newest first, so each directory is empty when its turn comes. Best effort: the error
            // the caller sees is the one that stopped the backup.
            for path in made.reversed() { _ = Glibc.remove(path) }
            throw error
        }
    }

    private static func parentDirectory(_ path: String) -> String {
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return parent.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : parent
    }

    /// The backup itself, into the empty `destination`; every file and directory it is about to
    /// create is appended to `made` first (a copy that fails midway leaves its file behind).
    private func copy(to destination: String, hardLinks: Bool, made: inout [String]) throws(StorageError) -> BackupSummary {
        var summary = BackupSummary(files: 0, linkedFiles: 0, copiedBytes: 0)
        let shardNames = try POSIX.listDirectory(path).filter { $0.hasPrefix("shard-") && POSIX.isDirectory(path + "/" + $0) }.sorted()

        try maintenanceLock.withLock { () throws(StorageError) in
            for name in shardNames {
                let source = path + "/" + name
                let target = destination + "/" + name
                made.append(target)
                try POSIX.makeDirectory(target)
                let listing = try ShardFiles.list(source)
                let snapshot = listing.snapshots.last
                var files: [String] = []
                if let snapshot { files.append(ShardFiles.snapshotName(snapshot)) }
                let segments = listing.segments.filter { $0 >= (snapshot ?? 0) }
                files += segments.map(ShardFiles.segmentName)
                for file in files {
                    let isActive = file == segments.last.map(ShardFiles.segmentName)
                    made.append(target + "/" + file)
                    if hardLinks && !isActive {
                        switch try POSIX.linkOrCopy(source + "/" + file, to: target + "/" + file) {
                        case .linked: summary.linkedFiles += 1
                        case .copied(let bytes): summary.copiedBytes += UInt64(bytes)  // another file system
                        }
                    } else {
                        let size = try fileSize(source + "/" + file)
                        try POSIX.copyFile(source + "/" + file, to: target + "/" + file, length: size)
                        summary.copiedBytes += UInt64(size)
                    }
                    summary.files += 1
                }
                try POSIX.fsyncDirectory(target)
            }
        }
        if POSIX.exists(catalogPath) {
            // Sized from the file it opened: a compaction renaming a new file in meanwhile
            // leaves the copy one whole file, the old or the new.
            made.append(destination + "/boards.log")
            let size = try POSIX.copyFile(catalogPath, to: destination + "/boards.log")
            summary.copiedBytes += UInt64(size)
            summary.files += 1
        }
        if let shards = try Self.recordedShardCount(path: path) {
            made.append(destination + "/" + Self.shardsFileName)
            try POSIX.writeFileAtomically(destination + "/" + Self.shardsFileName, directory: destination, Array("\(shards)\n".utf8))
        }
        made.append(destination + "/FORMAT")
        try POSIX.writeFileAtomically(
            destination + "/FORMAT", directory: destination,
            Array("\(Self.formatPrefix)\(Self.formatVersion)\n".utf8))
        try POSIX.fsyncDirectory(destination)
        // The destination's own entry in its parent: without it a power loss right after `backup`
        // returned could lose the whole directory.
        try POSIX.fsyncDirectory(Self.parentDirectory(destination))
        return summary
    }

    private func fileSize(_ file: String) throws(StorageError) -> Int {
        let fd = try POSIX.open(file, 0)
        defer { POSIX.close(fd) }
        return try POSIX.fileSize(fd, path: file)
    }
}
