#if canImport(Glibc)
import Glibc
#endif

/// Thin, throwing wrappers over the POSIX calls the storage layer needs.
///
/// Plain system calls rather than Foundation's FileHandle: we need exact control over which bytes
/// reach the disk when (`write` + `fdatasync`, `O_EXCL`, directory fsync after `rename`), and every
/// failure must carry the path and errno into an operator-readable message.
enum POSIX {
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(StorageError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw .io(operation: "open", path: path, errno: errno) }
        }
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Writes all of `bytes` (retrying short writes and EINTR).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(StorageError) {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.write(fd, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: path, errno: errno)
            }
            pointer += written
            remaining -= written
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(StorageError) {
        let result: Result<Void, StorageError> = bytes.withUnsafeBytes { raw in
            do throws(StorageError) { try writeAll(fd, raw, path: path) } catch { return .failure(error) }
            return .success(())
        }
        try result.get()
    }

    /// Data (and the size, if it changed) to stable storage: what a log append needs.
    static func fdatasync(_ fd: Int32, path: String) throws(StorageError) {
        while Glibc.fdatasync(fd) != 0 {
            if errno != EINTR { throw .io(operation: "fdatasync", path: path, errno: errno) }
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(StorageError) {
        while Glibc.fsync(fd) != 0 {
            if errno != EINTR { throw .io(operation: "fsync", path: path, errno: errno) }
        }
    }

    /// Makes a directory's entries (creations, renames, unlinks) durable.
    static func fsyncDirectory(_ path: String) throws(StorageError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    static func rename(_ from: String, _ to: String) throws(StorageError) {
        if Glibc.rename(from, to) != 0 { throw .io(operation: "rename to \(to)", path: from, errno: errno) }
    }

    /// Removes a file; a missing file is not an error.
    static func unlink(_ path: String) throws(StorageError) {
        if Glibc.unlink(path) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: path, errno: errno) }
    }

    /// Creates a directory; an existing one is fine.
    static func makeDirectory(_ path: String) throws(StorageError) {
        if Glibc.mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw .io(operation: "mkdir", path: path, errno: errno)
        }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func fileSize(_ fd: Int32, path: String) throws(StorageError) -> Int {
        var info = stat()
        if fstat(fd, &info) != 0 { throw .io(operation: "fstat", path: path, errno: errno) }
        return Int(info.st_size)
    }

    static func truncate(_ fd: Int32, to size: Int, path: String) throws(StorageError) {
        if ftruncate(fd, off_t(size)) != 0 { throw .io(operation: "ftruncate", path: path, errno: errno) }
    }

    /// Names in a directory, without "." and "..".
    static func listDirectory(_ path: String) throws(StorageError) -> [String] {
        guard let dir = opendir(path) else { throw .io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The whole file (for small files: FORMAT, LOCK, and copying).
    static func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        return try readAll(fd, path: path)
    }

    static func readAll(_ fd: Int32, path: String, limit: Int = .max) throws(StorageError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while result.count < limit {
            let wanted = min(chunk.count, limit - result.count)
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, wanted) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", path: path, errno: errno)
            }
            if got == 0 { break }
            result.append(contentsOf: chunk[0..<got])
        }
        return result
    }

    /// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
    /// A failure before the rename deletes the temp file (on a full disk it would hold on to the
    /// space it got) and leaves `path` as it was.
    static func writeFileAtomically(_ path: String, directory: String, _ bytes: [UInt8]) throws(StorageError) {
        let temporary = path + ".tmp"
        let fd = try open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        do throws(StorageError) {
            do throws(StorageError) {
                try writeAll(fd, bytes, path: temporary)
                try fsync(fd, path: temporary)
            } catch {
                close(fd)
                throw error
            }
            close(fd)
            try rename(temporary, path)
        } catch {
            _ = Glibc.unlink(temporary)
            throw error
        }
        try fsyncDirectory(directory)
    }

    /// Copies the first `length` bytes of `source` (all when nil: its size once opened) into a new
    /// file `destination`, fsynced. Returns the bytes copied.
    @discardableResult
    static func copyFile(_ source: String, to destination: String, length: Int? = nil) throws(StorageError) -> Int {
        let input = try open(source, O_RDONLY)
        defer { close(input) }
        let output = try open(destination, O_WRONLY | O_CREAT | O_EXCL)
        defer { close(output) }
        var remaining: Int
        if let length { remaining = length } else { remaining = try fileSize(input, path: source) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var copied = 0
        while remaining > 0 {
            let wanted = min(buffer.count, remaining)
            let got = buffer.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, wanted) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", path: source, errno: errno)
            }
            if got == 0 { break }
            try writeAll(output, Array(buffer[0..<got]), path: destination)
            remaining -= got
            copied += got
        }
        try fsync(output, path: destination)
        return copied
    }

    /// Hard-links `source` as `destination`, copying when linking is impossible (other file system).
    /// Whether `linkOrCopy` linked the file or, where links cannot be made, copied these bytes.
    enum LinkOrCopy: Equatable {
        case linked
        case copied(bytes: Int)
    }

    static func linkOrCopy(_ source: String, to destination: String) throws(StorageError) -> LinkOrCopy {
        if Glibc.link(source, destination) == 0 { return .linked }
        let code = errno
        if code == EXDEV || code == EPERM || code == EMLINK || code == ENOTSUP {
            let input = try open(source, O_RDONLY)
            defer { close(input) }
            let length = try fileSize(input, path: source)
            try copyFile(source, to: destination, length: length)
            return .copied(bytes: length)
        } else {
            throw .io(operation: "link to \(destination)", path: source, errno: code)
        }
    }

    /// Monotonic clock in nanoseconds (for flush intervals; never jumps with wall-clock changes).
    static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// A read-only memory map of a whole file; recovery parses logs and snapshots in place, with no
/// copy into the heap (the page cache is the buffer).
final class MappedFile {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    init(path: String) throws(StorageError) {
        self.path = path
        let fd = try POSIX.open(path, O_RDONLY)
        defer { POSIX.close(fd) }
        let size = try POSIX.fileSize(fd, path: path)
        if size == 0 {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if address == MAP_FAILED || address == nil { throw .io(operation: "mmap", path: path, errno: errno) }
        _ = madvise(address, size, MADV_SEQUENTIAL)
        mapping = address
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}
