import Foundation
import HiscoreTestSupport
import HiscoreWire
import Testing

/// `max_inflight_batch_items`: a writer pipelining more submit batches than the bound has the
/// rest wait in its socket (the server stops reading), and every batch is still answered.
@Suite("Submit batches in flight per connection")
struct BatchHoldTests {
    /// Pipelines `batches` batches of 1,000 new players on one connection (sent from another
    /// thread while this one reads), and returns the item statuses of every answer in order.
    private static func pipeline(batches: Int, port: Int) async throws -> [[StatusCode]] {
        try await offCooperativePool { () throws -> [[StatusCode]] in
            let connection = try RawConnection(port: port, timeoutSeconds: 20)
            guard connection.handshake() != nil else { throw RawConnectionError.system("no hello") }
            // The sender thread only sends; this one only reads (RawConnection keeps no state for sends).
            nonisolated(unsafe) let sending = connection
            let sender = Thread {
                for batch in 0..<batches {
                    let submits = (0..<1000).map {
                        SubmitRequest(boardID: "hold", playerID: "p:\(batch * 1000 + $0)", score: Int64($0), skipRanks: true)
                    }
                    sending.send(RequestEnvelope(callID: UInt64(batch + 1), method: .submitBatch(submits)))
                }
            }
            sender.start()
            var answers: [[StatusCode]] = []
            while answers.count < batches, let frame = connection.readFrame() {
                guard case .submitBatch(let results)? = frame.result else {
                    answers.append([frame.status?.code ?? .unknown])
                    continue
                }
                answers.append(results.map(\.status.code))
            }
            return answers
        }
    }

    @Test("over the bound the connection waits, and all 20 batches are answered in full")
    func heldThenAnswered() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--max-inflight-batch-items", "2000"],
            adminPort: true
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            let answers = try await Self.pipeline(batches: 20, port: server.port)
            #expect(answers.count == 20)
            #expect(answers.allSatisfy { $0.count == 1000 && $0.allSatisfy { $0 == .ok } }, "\(answers.map(\.count))")
            let holds = try await metricValue("hiscore_batch_item_holds_total", adminPort: adminPort)
            #expect((holds ?? 0) > 0, "the connection was never held")
        }
    }

    @Test("under the bound nothing is held")
    func underTheBound() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(arguments: ["--data-dir", directory.path, "--durability", "memory"], adminPort: true) { server in
            let adminPort = try #require(server.adminPortNumber)
            let answers = try await Self.pipeline(batches: 8, port: server.port)
            #expect(answers.count == 8 && answers.allSatisfy { $0.count == 1000 && $0.allSatisfy { $0 == .ok } })
            #expect(try await metricValue("hiscore_batch_item_holds_total", adminPort: adminPort) == 0)
        }
    }
}
