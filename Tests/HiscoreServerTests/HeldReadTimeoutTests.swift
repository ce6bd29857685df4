import Foundation
import HiscoreCore
import HiscoreTestSupport
import HiscoreWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// While the server holds a connection's reads because the client does not read its answers, the
/// frame timeout of the bytes it holds (an unfinished frame, frames held back) is paused, but only
/// for up to the idle timeout without the client reading (`CallHandler.armFrameCheck`).
@Suite("Held reads and the frame timeout")
struct HeldReadTimeoutTests {
    /// Answer bytes the kernel may take for a connection before the server sees its socket full:
    /// Linux grows a loopback socket's send buffer up to tcp_wmem's ceiling (4 MiB by default;
    /// ~2.5 MB was seen), plus a margin for the server's own pending write (a burst flush of
    /// 256 KiB and an answer) and the client's small receive buffer.
    private static func bufferedBytesCeiling() -> Int {
        let fields = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8))?.split(whereSeparator: \.isWhitespace)
        return (fields?.last.flatMap { Int($0) } ?? 4 << 20) + (1 << 20)
    }

    /// Back-to-back holds used to count as one: the socket draining and the held frames filling
    /// it again did not restart the held time, so a client with a long burst of list_boards
    /// behind it, reading every 1.5 s (with a 1 s frame timeout), was closed once its holds added
    /// up to the idle timeout (4 s), as if it had never read.
    @Test("a client reading its answers slowly but steadily outlives the idle timeout of holds; once it stops reading it is closed")
    func steadySlowReader() async throws {
        let idleTimeout = 4.0
        try await withServer(configure: {
            $0.limits.maxConnections = 1
            $0.limits.frameTimeoutSeconds = 1
            $0.limits.idleTimeoutSeconds = Int(idleTimeout)
        }) { server in
            try await offCooperativePool {
                let reader = try RawConnection(port: server.localPort, timeoutSeconds: 10, receiveBufferBytes: 4096)
                try #require(reader.handshake() != nil)
                _ = try Self.makeThousandBoards(reader)
                let before = reader.bytesReceived
                reader.send(RequestEnvelope(callID: 1, method: .listBoards(ListBoardsRequest(limit: 1000))))
                try #require(reader.readFrame()?.status == nil)
                let answerBytes = reader.bytesReceived - before
                // Each step reads more than the kernel and the server can have buffered, so the
                // server must have dispatched held frames again (the client made progress).
                let stepBytes = Self.bufferedBytesCeiling()
                let steps = 5
                let pause: UInt32 = 1_500_000  // µs: each hold outlasts the frame timeout, not the idle one
                let calls = (stepBytes / answerBytes + 1) * (steps + 2)
                var burst = ByteBufferBuilder()
                for callID in 1...calls {
                    burst.append(RequestEnvelope(callID: UInt64(callID), method: .listBoards(ListBoardsRequest(limit: 1000))))
                }
                burst.bytes += [0, 0, 0, 0, 100, 8]  // and the first bytes of a frame, left unfinished
                reader.send(burst.bytes)
                let clock = ContinuousClock()
                let start = clock.now
                var next: UInt64 = 1
                for step in 1...steps {
                    // Pacing what the test is about; a thread sleep, as in
                    // SecurityTests.activeConnectionIsNotIdle (this connection blocks its thread anyway).
                    usleep(pause)
                    let target = reader.bytesReceived + stepBytes
                    while reader.bytesReceived < target {
                        guard let frame = reader.readFrame() else {
                            Issue.record("closed at step \(step), \(clock.now - start) after the burst, while reading steadily")
                            return
                        }
                        #expect(frame.callID == next && frame.status == nil, "\(frame.callID) \(String(describing: frame.status))")
                        next += 1
                    }
                }
                #expect(clock.now - start > .seconds(idleTimeout + 2), "the holds added up to well past the idle timeout")
                #expect(Int(next) < calls, "answers were still to come when the client stopped reading")
                // Then it reads nothing more: it must be gone about the idle timeout later, the one
                // connection slot free again.
                let admitted = try Self.slotFrees(port: server.localPort, within: .seconds(idleTimeout + 10))
                #expect(admitted, "a client that stopped reading was never closed")
                #expect(reader.waitForClose())
            }
        }
    }

    /// The idle check spared a connection with a subscription (or calls in flight) whatever it
    /// did, so a client that opened one stream and then stopped reading kept its queued answers
    /// (up to max_inflight_calls × max_frame_bytes) for as long as its socket stayed up.
    @Test("a subscriber that stops reading while its answers fill the socket is closed about the idle timeout later")
    func stalledSubscriberIsClosed() async throws {
        let idleTimeout = 2.0
        try await withServer(configure: {
            $0.limits.maxConnections = 1
            $0.limits.idleTimeoutSeconds = Int(idleTimeout)
        }) { server in
            try await offCooperativePool {
                let reader = try RawConnection(port: server.localPort, timeoutSeconds: 10, receiveBufferBytes: 4096)
                try #require(reader.handshake() != nil)
                let prefix = try Self.makeThousandBoards(reader)
                reader.send(RequestEnvelope(callID: 2, method: .subscribe(SubscribeRequest(boardID: prefix + "0000", target: .top(1)))))
                try #require(reader.readFrame()?.callID == 2)
                // ~150 KB answers, more than the kernel and the server buffer; then no more reading.
                var burst = ByteBufferBuilder()
                for callID in 3..<200 {
                    burst.append(RequestEnvelope(callID: UInt64(callID), method: .listBoards(ListBoardsRequest(limit: 1000))))
                }
                reader.send(burst.bytes)
                let admitted = try Self.slotFrees(port: server.localPort, within: .seconds(idleTimeout + 15))
                #expect(admitted, "a subscriber that stopped reading was never closed")
                #expect(reader.waitForClose())
            }
        }
    }

    /// The first version timed "not reading" from a held read, which only a read event sets: a
    /// client whose answers filled its socket after its last bytes arrived (answers made by the
    /// shards after the read) was never closed.
    @Test("a subscriber whose answers filled its socket after its last request, and that sends nothing more, is closed too")
    func stalledAfterAsyncAnswers() async throws {
        let idleTimeout = 2.0
        try await withServer(configure: {
            $0.limits.maxConnections = 1
            $0.limits.idleTimeoutSeconds = Int(idleTimeout)
        }) { server in
            try await offCooperativePool {
                let reader = try RawConnection(port: server.localPort, timeoutSeconds: 10, receiveBufferBytes: 4096)
                try #require(reader.handshake() != nil)
                reader.send(RequestEnvelope(callID: 1, method: .createBoard(BoardConfig(id: "m", limits: BoardLimits(maxMetadataBytes: 4096)))))
                try #require(reader.readFrame()?.status == nil)
                for start in stride(from: 0, to: 200, by: 100) {
                    reader.send(RequestEnvelope(callID: 2, method: .submitBatch((start..<(start + 100)).map {
                        SubmitRequest(boardID: "m", playerID: "p\($0)", score: Int64($0), metadata: [UInt8](repeating: 7, count: 4000))
                    })))
                    try #require(reader.readFrame()?.status == nil)
                }
                reader.send(RequestEnvelope(callID: 3, method: .subscribe(SubscribeRequest(boardID: "m", target: .top(1)))))
                try #require(reader.readFrame()?.callID == 3)
                // ~800 KB answers each, answered by the shards after the read; then nothing more.
                var burst = ByteBufferBuilder()
                for callID in 10..<22 {
                    burst.append(RequestEnvelope(callID: UInt64(callID), method: .top(TopRequest(boardID: "m", limit: 200))))
                }
                reader.send(burst.bytes)
                let admitted = try Self.slotFrees(port: server.localPort, within: .seconds(idleTimeout + 15))
                #expect(admitted, "a subscriber that stopped reading (sending nothing more) was never closed")
            }
        }
    }

    /// 1000 boards with 120-byte ids (the prefix returned, then 4 digits): a list_boards answer
    /// of ~150 KB for a 12-byte call.
    private static func makeThousandBoards(_ reader: RawConnection) throws -> String {
        let prefix = String(repeating: "b", count: 116)
        for start in stride(from: 0, to: 1000, by: 250) {
            reader.send(RequestEnvelope(callID: 1, method: .submitBatch((start..<(start + 250)).map {
                SubmitRequest(boardID: prefix + String(format: "%04d", $0), playerID: "p", score: 1)
            })))
            try #require(reader.readFrame()?.status == nil)
        }
        return prefix
    }

    /// Whether a server admitting one connection takes a new one within `timeout`: the one it
    /// held was closed. Polled (each probe is refused at once while the slot is taken).
    private static func slotFrees(port: Int, within timeout: Duration) throws -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < timeout {
            let probe = try RawConnection(port: port, timeoutSeconds: 2)
            if probe.handshake() != nil { return true }
            usleep(250_000)  // poll interval
        }
        return false
    }
}
