import Foundation
import HiscoreClient
import HiscoreTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A server whose open-file limit runs out before `--max-connections`: it says so at start-up,
/// backs off accepting instead of spinning (the listening socket stays readable while accept
/// fails, and a loop that retried at once used a whole core and served nothing else), logs why,
/// and accepts again once descriptors are free.
@Suite("Open-file limit: a warning at start-up, accept backs off and recovers", .serialized)
struct OpenFileLimitTests {
    @Test("with `ulimit -n 64` the start-up warns, excess connections wait without a spinning loop, and accepting resumes")
    func acceptBacksOffWhenDescriptorsRunOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        // A wrapper that lowers the limit (soft and hard) and becomes hiscored.
        let wrapper = directory.path + "/hiscored-ulimit"
        try "#!/bin/sh\nulimit -n 64\nexec '\(ServerProcess.binary.path)' \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let server = try await ServerProcess.start(
            arguments: ["--durability", "memory", "--max-connections", "1000"], binary: URL(fileURLWithPath: wrapper))
        defer { Task { await server.stop() } }
        #expect(server.log.contains("the open-file limit (64, hard 64) allows about"), "\(server.log)")

        // More connections than descriptors: the kernel completes them, the server cannot accept them all.
        var connections: [RawConnection] = []
        for _ in 0..<80 { connections.append(try RawConnection(port: server.port)) }
        for connection in connections { connection.sendPreface() }
        #expect(await server.waitForLog("calls port: cannot accept connections: the process has no file descriptor left"), "\(server.log)")

        // Backing off, the server idles: a loop retrying accept would burn ~a core over the window.
        let pid = server.process.processIdentifier
        let before = try #require(cpuSeconds(pid))
        let window = ContinuousClock.now
        _ = await server.waitForLog("a line that is never logged", timeout: .seconds(2))
        let used = try #require(cpuSeconds(pid)) - before
        let elapsed = Double((ContinuousClock.now - window).components.seconds)
        #expect(used < 0.25 * max(1, elapsed), "hiscored used \(used) s of CPU in \(elapsed) s while out of descriptors")

        // Descriptors freed: the backed-off listener accepts again.
        for connection in connections { connection.disconnect() }
        connections.removeAll()
        let answered = try await within(.seconds(15), "a connection is served again") { () async throws -> [UInt8] in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(10))
            let echo = try await client.ping([7])
            try? await client.close()
            return echo
        }
        #expect(answered == [7])
    }
}

/// User plus system CPU seconds of a process, from /proc.
private func cpuSeconds(_ pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // Fields after the command: state is index 0; utime and stime are the 12th and 13th.
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
