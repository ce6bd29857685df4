import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A tmpfs of `bytes` mounted for one test by `withTmpfs` (root only: the suite is skipped, with
/// the reason printed, where mounting is refused). `fill()` takes every free page with a filler
/// file, `free()` deletes it again, `resize(bytes:)` remounts it at another size. tmpfs charges
/// whole pages: a file's last, partly used page still takes appends while the disk is full.
public final class Tmpfs: Sendable {
    public let path: String
    private var filler: String { path + "/filler" }

    public static let available: Bool = {
        guard geteuid() == 0, let probe = try? Tmpfs(bytes: 64 << 10) else { return false }
        probe.unmount()
        return true
    }()

    fileprivate init(bytes: Int) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-tmpfs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]) == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw CocoaError(.fileWriteNoPermission)
        }
    }

    /// Writes zeros until the file system says ENOSPC (the last page byte by byte).
    public func fill() async {
        await offCooperativePool {
            let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            precondition(fd >= 0)
            let chunk = [UInt8](repeating: 0, count: 4096)
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, 1) }) > 0 {}
            close(fd)
        }
    }

    public func free() { unlink(filler) }

    /// Remounts at `bytes`; false where mount refuses.
    public func resize(bytes: Int) async -> Bool {
        await offCooperativePool { Self.run("/bin/mount", ["-o", "remount,size=\(bytes)", path]) == 0 }
    }

    fileprivate func unmount() {
        _ = Self.run("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Runs `tool` and waits for it (blocks: call it off the cooperative pool); -1 where it
    /// cannot start.
    public static func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Mounts a tmpfs of `bytes` for `body` and unmounts it afterwards, also when `body` throws.
/// Mounting and unmounting run processes: they are waited for off the cooperative pool (see
/// `offCooperativePool`), as `fill()` is.
public func withTmpfs<T>(bytes: Int, _ body: (Tmpfs) async throws -> T) async throws -> T {
    let disk = try await offCooperativePool { try Tmpfs(bytes: bytes) }
    do {
        let result = try await body(disk)
        await offCooperativePool { disk.unmount() }
        return result
    } catch {
        await offCooperativePool { disk.unmount() }
        throw error
    }
}
