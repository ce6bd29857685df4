import Foundation
import HiscoreTestSupport
import HiscoreWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Many writers on two loops whose share is below one batch, two-phase submits,
/// slow readers (writability holds on top of budget holds), cancels, a writer that goes away;
/// every batch answered, the gauge back to 0, and a fresh writer not stuck afterwards.
@Suite("Submit batches in flight, mixed writers", .timeLimit(.minutes(3)))
struct BatchHoldMixTests {
    enum Mode: Sendable { case normal, slowReader, canceller, leaver }

    /// Returns (batches answered or cancelled, batches sent).
    static func writer(port: Int, id: Int, batches: Int, mode: Mode) async throws -> (Int, Int) {
        try await offCooperativePool { () throws -> (Int, Int) in
            let connection = try RawConnection(
                port: port, timeoutSeconds: 30, receiveBufferBytes: mode == .slowReader ? 4096 : nil)
            guard connection.handshake() != nil else { throw RawConnectionError.system("no hello") }
            nonisolated(unsafe) let sending = connection
            let sender = Thread {
                for batch in 0..<batches {
                    let submits = (0..<500).map {
                        SubmitRequest(boardID: "s\(id % 3)", playerID: "w\(id)p\(batch * 500 + $0)", score: Int64($0), skipRanks: batch % 2 == 0)
                    }
                    sending.send(RequestEnvelope(callID: UInt64(batch + 1), method: .submitBatch(submits)))
                    if mode == .canceller && batch % 3 == 1 {
                        sending.send(RequestEnvelope(callID: UInt64(10_000 + batch), method: .cancel(callID: UInt64(batch + 1))))
                    }
                }
            }
            sender.start()
            var done = Set<UInt64>()
            var reads = 0
            while done.count < batches, let frame = connection.readFrame() {
                reads += 1
                if frame.callID >= 1 && frame.callID <= UInt64(batches) { done.insert(frame.callID) }
                if mode == .slowReader { usleep(20_000) }  // a slow client, not synchronization
                if mode == .leaver && reads >= 3 {
                    connection.disconnect()
                    return (batches, batches)
                }
            }
            while !sender.isFinished { usleep(1000) }
            return (done.count, batches)
        }
    }

    @Test("writers, slow readers, cancellers and a leaver on two loops: nobody is held forever, items all go back")
    func mixedWriters() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: [
                "--data-dir", directory.path, "--durability", "memory", "--shards", "2",
                "--max-inflight-batch-items", "100000", "--max-server-inflight-batch-items", "1500",
            ],
            adminPort: true
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            let modes: [Mode] = [.normal, .normal, .slowReader, .slowReader, .canceller, .canceller, .leaver, .normal]
            let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for (id, mode) in modes.enumerated() {
                    group.addTask { try await Self.writer(port: server.port, id: id, batches: 12, mode: mode) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (answered, sent) in results { #expect(answered == sent, "\(results)") }
            #expect(try await BatchHoldTests.inflightItemsReachZero(adminPort: adminPort), "items left counted on the loops")
            let after = try await Self.writer(port: server.port, id: 99, batches: 10, mode: .normal)
            #expect(after.0 == after.1)
        }
    }
}
