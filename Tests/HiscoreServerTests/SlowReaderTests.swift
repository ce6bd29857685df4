import HiscoreClient
import HiscoreCore
import HiscoreWire
import Testing

@Suite("Slow stream readers")
struct SlowReaderTests {
    /// A reader that stops reading while the top of the board churns: the server must not queue
    /// an event per interval for it (that would be hundreds of megabytes here), and when the reader
    /// drains it must still end on the exact final state.
    @Test("a reader that stops reading gets bounded bytes and ends on the correct final state")
    func slowReader() async throws {
        // 40 top-1000 streams on one connection: past the default max_stream_window_entries.
        try await withServer(shards: 2, configure: { $0.limits.maxStreamWindowEntries = 40_000 }) { server in
            let writer = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await writer.submitBatch((0..<1000).map { SubmitRequest(boardID: "churn", playerID: "p\($0)", score: Int64($0)) })
            let reader = try RawConnection(port: server.localPort, timeoutSeconds: 10, receiveBufferBytes: 16 * 1024)
            _ = reader.handshake()
            let subscriptions = 40
            for callID in 1...subscriptions {
                reader.send(RequestEnvelope(callID: UInt64(callID), method: .subscribe(SubscribeRequest(
                    boardID: "churn", target: .top(1000), minIntervalMillis: 20))))
            }
            // Churn for 1.5 s: every round puts a new player on top, which moves all 1000 positions
            // (a ~40 KB change event per subscription per interval if the server queued them).
            let clock = ContinuousClock()
            let end = clock.now + .milliseconds(1500)
            var round: Int64 = 0
            while clock.now < end {
                round += 1
                _ = try await writer.submit(board: "churn", player: "top\(round)", score: 1_000_000 + round)
            }
            let finalTop = try await writer.top(board: "churn", limit: 1000).entries
            // Now drain: apply every frame; stop once every view equals the final top.
            var views = [UInt64: [WireEntry]]()
            var settled = Set<UInt64>()
            while settled.count < subscriptions {
                guard let frame = reader.readFrame(), case .event(let event)? = frame.result,
                    case .window(let update) = event.change
                else { break }
                let view = event.snapshot ? update.entries : WindowDiff.apply(update.changes, to: views[frame.callID] ?? [])
                views[frame.callID] = view
                if view == finalTop { settled.insert(frame.callID) } else { settled.remove(frame.callID) }
            }
            #expect(settled.count == subscriptions, "every view ends on the final top 1000")
            #expect(reader.bytesReceived < 64 << 20, "received \(reader.bytesReceived) bytes after \(round) rounds")
            try await writer.close()
        }
    }
}
