#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit (`RLIMIT_NOFILE`), which bounds connections before
/// `--max-connections` does when it is lower.
struct FileDescriptorLimit: Equatable {
    var soft: UInt64
    var hard: UInt64

    static func current() -> FileDescriptorLimit? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return FileDescriptorLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Descriptors the process needs besides client connections: the admin port's connections
    /// (`AdminHTTPServer.maxConnections`), standard streams, listeners, each loop's epoll and
    /// eventfd, the catalog, the shards' log segments and a snapshot each (18 in all measured
    /// with two shards, before any snapshot and with no admin connection).
    static func reserve(shards: Int) -> UInt64 { UInt64(AdminHTTPServer.maxConnections + 32 + 4 * shards) }

    /// Raises the soft limit toward the hard one as far as `needed` (the usual soft limit, 1024,
    /// is far below the default --max-connections); the limit after, or nil where it cannot be read.
    static func raise(toCover needed: UInt64) -> FileDescriptorLimit? {
        guard var current = current() else { return nil }
        guard current.soft < needed, current.soft < current.hard else { return current }
        var wanted = rlimit()
        wanted.rlim_cur = rlim_t(min(needed, current.hard))
        wanted.rlim_max = rlim_t(current.hard)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted) == 0 { current.soft = UInt64(wanted.rlim_cur) }
        return current
    }
}
