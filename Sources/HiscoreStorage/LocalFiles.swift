import Glibc

/// Small files outside the data directory's own formats (a keys file, `/proc` entries) and the
/// data directory's parents, through the same POSIX calls as the rest of this module.
public enum LocalFiles {
    /// The file at `path` as text, without a leading byte order mark; nil when it is not UTF-8. Reads to the end, so `/proc` files
    /// (whose size says 0) come whole; a file over `limit` bytes is refused (EFBIG), not cut.
    public static func readText(_ path: String, limit: Int = 1 << 20) throws(StorageError) -> String? {
        let fd = try POSIX.open(path, O_RDONLY)
        defer { POSIX.close(fd) }
        let bytes = try POSIX.readAll(fd, path: path, limit: limit + 1)
        guard bytes.count <= limit else { throw .io(operation: "read (over \(limit) bytes)", path: path, errno: EFBIG) }
        // A byte order mark some editors write is not part of the text.
        let text = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.dropFirst(3) : bytes[...]
        return String(validating: text, as: UTF8.self)
    }

    /// Creates `path` and every missing directory above it (`mkdir -p`); one that exists is left
    /// as it is. A part of the path that exists but is not a directory fails at the next mkdir.
    public static func makeDirectories(_ path: String) throws(StorageError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if !POSIX.isDirectory(prefix) { try POSIX.makeDirectory(prefix) }
            prefix += "/"
        }
    }
}
