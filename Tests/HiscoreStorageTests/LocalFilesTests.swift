#if canImport(Glibc)
import Glibc
#endif
@testable import HiscoreStorage
import Testing

@Suite("Local files: text reads and mkdir -p")
struct LocalFilesTests {
    private func write(_ bytes: [UInt8], to path: String) throws {
        let fd = try POSIX.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        defer { POSIX.close(fd) }
        try POSIX.writeAll(fd, bytes, path: path)
    }

    @Test("text without a byte order mark; nil when not UTF-8; a file over the limit refused, not cut")
    func readText() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let path = tmp.path + "/keys"
        try write(Array("writer k1\n".utf8), to: path)
        #expect(try LocalFiles.readText(path) == "writer k1\n")
        try write([0xEF, 0xBB, 0xBF] + Array("reader é".utf8), to: path)
        #expect(try LocalFiles.readText(path) == "reader é")
        try write([0x61, 0xFF, 0x62], to: path)
        #expect(try LocalFiles.readText(path) == nil)
        try write([UInt8](repeating: 0x61, count: 101), to: path)
        #expect(try LocalFiles.readText(path, limit: 101)?.count == 101)
        #expect(throws: StorageError.self) { try LocalFiles.readText(path, limit: 100) }
        #expect(throws: StorageError.self) { try LocalFiles.readText(tmp.path + "/missing") }
        // /proc files say size 0 and come whole.
        #expect(try LocalFiles.readText("/proc/self/status")?.contains("VmRSS:") == true)
    }

    @Test("makeDirectories creates every missing level, leaves existing ones, fails under a file")
    func makeDirectories() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        try LocalFiles.makeDirectories(tmp.path + "/a/b/c")
        #expect(POSIX.isDirectory(tmp.path + "/a/b/c"))
        try LocalFiles.makeDirectories(tmp.path + "/a/b/c")
        try LocalFiles.makeDirectories(tmp.path + "/a//b/d/")
        #expect(POSIX.isDirectory(tmp.path + "/a/b/d"))
        try write([1], to: tmp.path + "/file")
        #expect(throws: StorageError.self) { try LocalFiles.makeDirectories(tmp.path + "/file/x") }
    }
}
