#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A tmpfs of `bytes` mounted for one test by `withTmpfs` (root only: the suite is skipped, with
/// the reason printed, where mounting is refused). `fill()` takes every free page with a filler
/// file, `free()` deletes it again. tmpfs charges whole pages: a file's last, partly used page
/// still takes appends while the disk is full.
final class Tmpfs {
    let path: String
    private var filler: String { path + "/filler" }

    static let available: Bool = {
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

    /// Writes zeros until the file system says ENOSPC.
    func fill() async {
        await offCooperativePool {
            let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            precondition(fd >= 0)
            let chunk = [UInt8](repeating: 0, count: 4096)
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, 1) }) > 0 {}
            close(fd)
        }
    }

    func free() { unlink(filler) }

    fileprivate func unmount() {
        _ = Self.run("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }

    static func run(_ tool: String, _ arguments: [String]) -> Int32 {
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
func withTmpfs<T>(bytes: Int, _ body: (Tmpfs) async throws -> T) async throws -> T {
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
