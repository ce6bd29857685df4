import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreWire
import NIOCore
import Testing

/// What a client can make a server hold, measured in a process of its own through jemalloc's
/// `stats.allocated` on /metrics (in-process, other tests' allocations would count).
@Suite("Memory bounds against clients that do not read", .serialized)
struct MemoryBoundTests {
    private static func allocated(_ adminPort: Int) async throws -> Double {
        try await metricValue("hiscore_jemalloc_allocated_bytes", adminPort: adminPort) ?? -1
    }

    /// Polls the process's figure (bounded: `seconds`) until `condition` holds or it has settled
    /// (within 1 MiB over four reads 200 ms apart); returns the last one read.
    private static func waitForAllocated(_ adminPort: Int, seconds: Int, until condition: (Double) -> Bool) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var readings = [try await allocated(adminPort)]
        while let last = readings.last, !condition(last), ContinuousClock.now < deadline {
            if readings.count >= 4, let low = readings.suffix(4).min(), let high = readings.suffix(4).max(), high - low < Double(1 << 20) {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
            readings.append(try await allocated(adminPort))
        }
        return readings.last ?? 0
    }

    /// `list_boards` is answered on the connection's loop at once, so it is not counted in
    /// max_inflight_calls, and its answers gathered in one buffer for a whole read before the
    /// flush that lets writability hold reads: ~12-byte requests, ~150 KB answers, 516 MiB for
    /// 4000 of them (2 GiB for 12,000).
    @Test("pipelined list_boards from a client that does not read stay within inflight x frame bound")
    func listBoardsAmplification() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try ServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--shards", "2", "--max-memory", "64M"],
            adminPort: true)
        defer { server.stop() }
        let adminPort = try #require(server.adminPortNumber)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
        // 1000 boards with 120-byte ids (a writer auto-creates them).
        let prefix = String(repeating: "b", count: 116)
        for start in stride(from: 0, to: 1000, by: 250) {
            _ = try await client.submitBatch((start..<(start + 250)).map {
                SubmitRequest(boardID: prefix + String(format: "%04d", $0), playerID: "p", score: 1)
            })
        }
        let before = try await Self.allocated(adminPort)
        let reader = try RawConnection(port: server.port, timeoutSeconds: 10, receiveBufferBytes: 4096)
        _ = reader.handshake()
        // 4000 calls (~50 KB): far fewer than the rate limit's burst of 100,000.
        var burst = ByteBufferBuilder()
        for index in 0..<4000 {
            burst.append(RequestEnvelope(callID: UInt64(index + 1), method: .listBoards(ListBoardsRequest(limit: 1000))))
        }
        reader.send(burst.bytes)
        // max_inflight_calls (256) x max_frame_bytes (1 MiB) is what the limits imply per connection.
        let bound = Double(256 << 20)
        let after = try await Self.waitForAllocated(adminPort, seconds: 10) { $0 - before > bound }
        print("MemoryBoundTests.listBoardsAmplification: allocated \(Int(before) >> 20) -> \(Int(after) >> 20) MiB")
        #expect(
            after - before <= bound,
            "allocated \(Int(before) >> 20) MiB -> \(Int(after) >> 20) MiB for one connection that sent ~\(burst.bytes.count / 1024) KB and read nothing")
        // Frames held back are answered, in order, once a client reads: a second connection's
        // burst of answers several times its socket buffers, then a ping.
        let patient = try RawConnection(port: server.port, timeoutSeconds: 30, receiveBufferBytes: 4096)
        _ = patient.handshake()
        var second = ByteBufferBuilder()
        for index in 0..<30 {
            second.append(RequestEnvelope(callID: UInt64(index + 1), method: .listBoards(ListBoardsRequest(limit: 1000))))
        }
        second.append(RequestEnvelope(callID: 31, method: .ping(payload: [1, 2, 3])))
        patient.send(second.bytes)
        var answered: [UInt64] = []
        while answered.count < 31, let frame = patient.readFrame() {
            answered.append(frame.callID)
            if frame.callID <= 30, case .listBoards(let page)? = frame.result { #expect(page.boards.count == 1000) }
        }
        #expect(answered == Array(1...31))
        try await client.close()
    }
}
