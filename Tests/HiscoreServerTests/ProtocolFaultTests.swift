import HiscoreClient
import HiscoreTestSupport
import HiscoreWire
import NIOCore
import Testing

/// Hostile or broken input over a real socket: each case gets its documented answer, and the
/// server keeps serving a well-behaved client afterwards.
@Suite("Protocol faults")
struct ProtocolFaultTests {
    /// Runs `attack` against a live server, then proves a normal client is still served.
    private func afterAttack(_ attack: (Int) throws -> Void) async throws {
        try await withServer { server in
            try attack(server.localPort)
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            #expect(try await client.ping([7]) == [7])
            try await client.close()
        }
    }

    @Test("a wrong preface gets an INVALID_ARGUMENT frame, then the connection closes")
    func wrongPreface() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            connection.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            let frame = connection.readFrame()
            #expect(frame?.callID == 0)
            #expect(frame?.status?.code == .invalidArgument)
            #expect(connection.waitForClose())
        }
    }

    @Test("an unsupported protocol version is refused")
    func wrongVersion() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            connection.send(Array("HISCORE".utf8) + [0x02])
            #expect(connection.readFrame()?.status?.message.contains("version") == true)
            #expect(connection.waitForClose())
        }
    }

    @Test("the hello announces the limits")
    func hello() async throws {
        try await withServer { server in
            let connection = try RawConnection(port: server.localPort)
            let hello = try #require(connection.handshake())
            #expect(hello.protocolVersion == 1)
            #expect(hello.maxFrameBytes == 1 << 20)
            #expect(hello.maxInflightCalls == 256)
            #expect(hello.maxBatchSubmits == 1000)
        }
    }

    @Test("a declared length over the maximum gets RESOURCE_EXHAUSTED and a close, without buffering")
    func oversizedLength() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            _ = connection.handshake()
            connection.send([0, 0xff, 0xff, 0xff, 0xff])  // 4 GiB - 1, and no body follows
            let frame = connection.readFrame()
            #expect(frame?.callID == 0)
            #expect(frame?.status?.code == .resourceExhausted)
            #expect(connection.waitForClose())
        }
    }

    @Test("a compressed frame gets UNIMPLEMENTED and a close")
    func compressedFlag() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            _ = connection.handshake()
            connection.send([1, 0, 0, 0, 2, 8, 1])
            #expect(connection.readFrame()?.status?.code == .unimplemented)
            #expect(connection.waitForClose())
        }
    }

    @Test("undecodable protobuf gets INVALID_ARGUMENT and the connection stays open")
    func garbageBody() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            _ = connection.handshake()
            // call_id 9, then a length-delimited field whose length runs past the end.
            connection.send([0, 0, 0, 0, 5, 0x08, 0x09, 0x52, 0x7f, 0x01])
            let frame = connection.readFrame()
            #expect(frame?.callID == 9)
            #expect(frame?.status?.code == .invalidArgument)
            connection.send(RequestEnvelope(callID: 10, method: .ping(payload: [1])))
            #expect(connection.readFrame()?.result == .ping(payload: [1]))
        }
    }

    @Test("the preface and frames cut anywhere across reads, and many frames in one read, are all answered in order")
    func framesAcrossReads() async throws {
        try await withServer { server in
            let connection = try RawConnection(port: server.localPort)
            var stream = ConnectionPreface.bytes
            var frameEnds: [Int] = []
            for call in UInt64(1)...12 {
                var buffer = ByteBuffer()
                FrameEncoding.encodeRequestFrame(
                    RequestEnvelope(callID: call, method: .ping(payload: Array(repeating: UInt8(call), count: Int(call) * 7))),
                    into: &buffer)
                stream += Array(buffer.readableBytesView)
                frameEnds.append(stream.count)
            }
            // Each send ends 1, 2, 3 or 4 bytes into the next frame (inside its 5-byte header) or
            // past its header, so the server's reads end mid-preface, mid-header and mid-body;
            // waiting for each answer keeps the cuts where they are. The last send is 4 frames.
            let cuts = [3, 8 + 1, frameEnds[0] + 2, frameEnds[1] + 3, frameEnds[2] + 4, frameEnds[3] + 5, frameEnds[4] + 9,
                        frameEnds[5] + 1, frameEnds[6] + 7, frameEnds[7], stream.count]
            var sent = 0
            var helloRead = false
            var answered: [UInt64] = []
            for cut in cuts {
                connection.send(Array(stream[sent..<cut]))
                sent = cut
                // Read the hello once the preface is in, then every frame this send completed.
                if !helloRead && cut >= ConnectionPreface.bytes.count {
                    #expect(connection.readFrame()?.callID == 0, "the hello")
                    helloRead = true
                }
                let completed = frameEnds.filter { $0 <= cut }.count
                while answered.count < completed {
                    guard let frame = connection.readFrame() else { break }
                    answered.append(frame.callID)
                    #expect(frame.result == .ping(payload: Array(repeating: UInt8(frame.callID), count: Int(frame.callID) * 7)))
                }
            }
            #expect(answered == Array(1...12))
        }
    }

    @Test("a request without a method gets UNIMPLEMENTED; a zero-length frame is such a request")
    func noMethod() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            _ = connection.handshake()
            connection.send(RequestEnvelope(callID: 4, method: nil))
            let frame = connection.readFrame()
            #expect(frame?.callID == 4 && frame?.status?.code == .unimplemented)
            connection.send([0, 0, 0, 0, 0])
            #expect(connection.readFrame()?.status?.code == .invalidArgument)  // call_id 0 is reserved
        }
    }

    @Test("a truncated frame followed by EOF is dropped quietly")
    func truncatedThenEOF() async throws {
        try await afterAttack { port in
            let connection = try RawConnection(port: port)
            _ = connection.handshake()
            connection.send([0, 0, 0, 0, 50, 8, 1, 2])
        }
    }

    @Test("a connection that never sends the preface is closed after the preface timeout")
    func prefaceTimeout() async throws {
        try await withServer(configure: { $0.limits.prefaceTimeoutSeconds = 1 }) { server in
            try await offCooperativePool {
                let connection = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                #expect(connection.waitForClose())
            }
        }
    }

    @Test("invalid ids and out-of-range limits get INVALID_ARGUMENT / OUT_OF_RANGE")
    func badArguments() async throws {
        try await withClient { client, _ in
            await expectStatus(.invalidArgument) { _ = try await client.submit(board: "bad board", player: "p", score: 1) }
            await expectStatus(.invalidArgument) { _ = try await client.submit(board: "b", player: "", score: 1) }
            await expectStatus(.invalidArgument) {
                _ = try await client.submit(board: "b", player: String(repeating: "x", count: 129), score: 1)
            }
            await expectStatus(.invalidArgument) { _ = try await client.submit(board: "b", player: "é", score: 1) }
            _ = try await client.submit(board: "b", player: "p", score: 1)
            await expectStatus(.outOfRange) { _ = try await client.top(board: "b", limit: 1001) }
            await expectStatus(.outOfRange) { _ = try await client.around(board: "b", player: "p", before: 5000) }
            await expectStatus(.invalidArgument) { _ = try await client.top(board: "b", after: [1, 2, 3]) }
            await expectStatus(.notFound) { _ = try await client.top(board: "nope") }
            await expectStatus(.notFound) { _ = try await client.rank(board: "b", player: "ghost") }
            await expectStatus(.resourceExhausted) {
                _ = try await client.submitBatch((0..<1001).map { SubmitRequest(boardID: "b", playerID: "p\($0)", score: 1) })
            }
            await expectStatus(.resourceExhausted) {
                _ = try await client.entries(board: "b", players: (0..<1001).map { "p\($0)" })
            }
            await expectStatus(.invalidArgument) { _ = try await client.ping([UInt8](repeating: 0, count: 1025)) }
            // A batch with one bad item still applies the others.
            let results = try await client.submitBatch([
                SubmitRequest(boardID: "b", playerID: "ok1", score: 5), SubmitRequest(boardID: "b", playerID: "bad id", score: 5),
                SubmitRequest(boardID: "b", playerID: "ok2", score: 6),
            ])
            #expect(results.map(\.status.code) == [.ok, .invalidArgument, .ok])
            #expect(results[2].response?.entry.rank == 1)
        }
    }
}
