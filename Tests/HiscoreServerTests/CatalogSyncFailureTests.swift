import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreTestSupport
import HiscoreWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A failed fdatasync of the board catalog, which no file system of a test can be made to
/// produce on demand (tmpfs never fails one): the server runs with a preloaded `fdatasync`
/// that fails with EIO for `boards.log` while a trigger file exists.
@Suite("The board catalog after a failed fdatasync", .serialized, .enabled(if: SyncFault.compilerAvailable, "needs cc"))
struct CatalogSyncFailureTests {
    @Test("a failed catalog fdatasync is logged once, /readyz answers 503, hiscore_catalog_failed is 1, and board changes are refused until a restart while scores go on")
    func poisonedCatalog() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let fault = try await SyncFault(in: directory.path)
        let data = directory.path + "/data"
        try await withServerProcess(
            arguments: ["--data-dir", data, "--durability", "fsync", "--shards", "1"], adminPort: true,
            environment: fault.environment
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            _ = try await client.createBoard(BoardConfig(id: "before"))
            _ = try await client.submit(board: "before", player: "alice", score: 10)
            #expect(try await httpGet(port: adminPort, path: "/readyz").status == 200)

            fault.arm()
            let failed = await expectStatus(.unavailable) { _ = try await client.createBoard(BoardConfig(id: "during")) }
            #expect(failed.contains("fdatasync"), "\(failed)")
            #expect(await server.waitForLog("are refused until hiscored is restarted"), "nothing logged about the failed catalog")
            let ready = try await httpGet(port: adminPort, path: "/readyz")
            #expect(ready.status == 503 && ready.body.contains("board catalog failed"), "\(ready.status) \(ready.body)")
            #expect(try await metricValue("hiscore_catalog_failed", adminPort: adminPort) == 1)

            // The kernel reports a lost write-back once: a later fdatasync that succeeds proves
            // nothing, so the catalog stays refused although the fault is gone.
            fault.disarm()
            let after = await expectStatus(.unavailable) { _ = try await client.deleteBoard("before") }
            #expect(after.contains("restart"), "\(after)")
            let reset = await expectStatus(.unavailable) { _ = try await client.resetBoard("before") }
            #expect(!reset.isEmpty)
            // Scores live in the shard logs, which did not fail.
            _ = try await client.submit(board: "before", player: "bob", score: 20)
            #expect(try await client.top(board: "before", limit: 10).entries.map(\.playerID) == ["bob", "alice"])
            #expect(server.log.components(separatedBy: "are refused until hiscored is restarted").count == 2, "logged once")
            try await client.close()
        }

        // A restart clears it, with every acknowledged change.
        try await withServerProcess(
            arguments: ["--data-dir", data, "--durability", "fsync", "--shards", "1"], adminPort: true
        ) { restarted in
            let again = try await HiscoreClient.connect(host: "127.0.0.1", port: restarted.port)
            #expect(try await again.top(board: "before", limit: 10).entries.map(\.playerID) == ["bob", "alice"])
            _ = try await again.createBoard(BoardConfig(id: "after"))
            #expect(try await httpGet(port: try #require(restarted.adminPortNumber), path: "/readyz").status == 200)
            try await again.close()
        }
    }
}

/// A shared object that makes `fdatasync` of `boards.log` fail with EIO while its trigger file
/// exists, built with the system's C compiler into a test's directory.
struct SyncFault {
    static var compilerAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") }

    private static let source = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>

        int fdatasync(int fd) {
            static int (*real)(int);
            if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
            const char *trigger = getenv("HISCORE_TEST_FDATASYNC_FAULT");
            if (trigger && access(trigger, F_OK) == 0) {
                char link[64], target[4096];
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                ssize_t length = readlink(link, target, sizeof target - 1);
                if (length > 0) {
                    target[length] = 0;
                    size_t n = (size_t)length;
                    if (n >= 10 && strcmp(target + n - 10, "boards.log") == 0) {
                        errno = EIO;
                        return -1;
                    }
                }
            }
            return real(fd);
        }
        """

    let library: String
    let trigger: String

    init(in directory: String) async throws {
        let sourcePath = directory + "/sync-fault.c"
        library = directory + "/sync-fault.so"
        trigger = directory + "/sync-fault.armed"
        try Self.source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        cc.arguments = ["-shared", "-fPIC", "-O1", "-o", library, sourcePath, "-ldl"]
        try await offCooperativePool {
            try cc.run()
            cc.waitUntilExit()
        }
        guard cc.terminationStatus == 0 else { throw CompileFailed() }
    }

    struct CompileFailed: Error {}

    var environment: [String: String] { ["LD_PRELOAD": library, "HISCORE_TEST_FDATASYNC_FAULT": trigger] }

    func arm() { _ = FileManager.default.createFile(atPath: trigger, contents: Data()) }
    func disarm() { try? FileManager.default.removeItem(atPath: trigger) }
}
