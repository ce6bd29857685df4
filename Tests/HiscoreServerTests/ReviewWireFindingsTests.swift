import Foundation
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreWire
import NIOCore
import Testing

private let reviewAdminKey = "admin-key-0123456789abcdef"
private let reviewWriterKey = "writer-key-0123456789abcdef"
private let reviewTokenSecret = "token-secret-0123456789abcdef-0123456789"

private func reviewAccess() throws -> AccessControl {
    var keys = APIKeys()
    try keys.add(key: reviewAdminKey, role: .admin, name: "ops")
    try keys.add(key: reviewWriterKey, role: .writer, name: "game-server")
    return AccessControl(keys: keys, tokens: try PlayerTokenVerifier(secret: reviewTokenSecret))
}

@Suite("Review: wire, connection and call findings")
struct ReviewWireFindingsTests {
    /// The connection caches the last credential it accepted (`CallHandler.resolve`) and answers
    /// the same token string from that cache without verifying it again: once the token has
    /// expired, `authenticate` with it still answers OK (role player, an expires_at in the past),
    /// resets the failed-authentication count and re-installs the expired identity. A fresh
    /// connection refuses the very same token with UNAUTHENTICATED.
    @Test("authenticate with a token that expired since it was first accepted is UNAUTHENTICATED, as on a fresh connection")
    func expiredTokenReauthenticates() async throws {
        let access = try reviewAccess()
        try await withServer(configure: { $0.access = access }) { server in
            let now = Int64(Date().timeIntervalSince1970)
            let verifier = try PlayerTokenVerifier(secret: reviewTokenSecret)
            // Valid (with the 30 s leeway) for three or four more seconds: long enough to be
            // accepted on a loaded machine (the whole suite runs in parallel), short for a test.
            let expiring = verifier.mint(
                playerID: "me", boards: ["*"], expiresAt: now - PlayerTokenVerifier.leewaySeconds + 3, issuedAt: now - 60)
            let connection = try RawConnection(port: server.localPort, timeoutSeconds: 30)
            _ = connection.handshake()
            var callID: UInt64 = 0
            func send(_ method: RequestMethod) -> ResponseEnvelope? {
                callID += 1
                connection.send(RequestEnvelope(callID: callID, method: method))
                return connection.readFrame()
            }
            guard case .authenticate? = send(.authenticate(token: expiring))?.result else {
                Issue.record("the token was not accepted while valid")
                return
            }
            // Wait (bounded) until the server itself says the token has expired.
            let start = ContinuousClock.now
            var expired = false
            while ContinuousClock.now - start < .seconds(60) {
                if send(.count(CountRequest(boardID: "b")))?.status?.code == .unauthenticated {
                    expired = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))  // poll interval, not synchronization
            }
            try #require(expired, "the token never expired")
            // Expired, the token no longer lets the connection's frames cost more than a stranger's:
            // a large one is refused before its decode.
            let large = send(.submitBatch((0..<200).map {
                SubmitRequest(boardID: "b", playerID: "me", score: Int64($0), metadata: [UInt8](repeating: 1, count: 100))
            }))
            #expect(large?.status?.code == .unauthenticated)
            #expect(large?.status?.message.contains("without credentials") == true, "\(String(describing: large?.status))")
            // A fresh connection refuses it ...
            let fresh = try RawConnection(port: server.localPort)
            _ = fresh.handshake()
            fresh.send(RequestEnvelope(callID: 1, method: .authenticate(token: expiring)))
            #expect(fresh.readFrame()?.status?.code == .unauthenticated)
            // ... and so must the connection that accepted it before it expired.
            let again = send(.authenticate(token: expiring))
            #expect(again?.status?.code == .unauthenticated, "expired token re-authenticated: \(String(describing: again))")
        }
    }

    /// `CallRouter` refuses a batch whose answers could exceed max_frame_bytes, before anything
    /// is written, counting 96 bytes + board id + player id + the board's max_metadata_bytes per
    /// item. A refused item's answer is a status whose message is not bounded by that: a player
    /// token's "may only submit its own score (player <sub>)" carries the token's 128-byte sub, not
    /// the item's ids. So the batch passes the check, the player's own item is written, and the
    /// whole answer is then replaced by RESOURCE_EXHAUSTED (CallHandler.write): the client is told
    /// the batch failed although its write landed.
    @Test("a batch whose answer cannot fit in max_frame_bytes is refused before anything is written, not after")
    func batchAnswerBoundHoldsForRefusedItems() async throws {
        let access = try reviewAccess()
        try await withServer(configure: {
            $0.access = access
            $0.limits.maxFrameBytes = 128 << 10
        }) { server in
            let admin = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await admin.authenticate(token: reviewAdminKey)
            try await admin.createBoard(BoardConfig(id: "b", limits: BoardLimits(maxMetadataBytes: 1), clientWrites: true))
            let me = String(repeating: "m", count: 128)
            let now = Int64(Date().timeIntervalSince1970)
            let token = try PlayerTokenVerifier(secret: reviewTokenSecret).mint(
                playerID: me, boards: ["b"], expiresAt: now + 3600, issuedAt: now)
            let player = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await player.authenticate(token: token)
            let batch = [SubmitRequest(boardID: "b", playerID: me, score: 5)]
                + (1..<1000).map { _ in SubmitRequest(boardID: "b", playerID: "x", score: 1) }
            var answered: [SubmitResult]?
            var refusal: HiscoreError?
            do {
                answered = try await player.submitBatch(batch)
            } catch let error as HiscoreError {
                refusal = error
            }
            let written = (try? await admin.rank(board: "b", player: me)) != nil
            if let refusal {
                #expect(!written, "the batch was answered \(refusal.code) (\(refusal.message)) but its own item was written")
            } else {
                #expect(answered?.first?.status.code == .ok)
            }
            try? await player.close()
            try? await admin.close()
        }
    }

    /// docs/protocol.md: a call_id must be unique among the calls in flight, and "a call_id
    /// already in flight" is answered INVALID_ARGUMENT. `CallHandler.handleFrame` answers
    /// `authenticate` and `cancel` before that check, so a cancel (or authenticate) reusing the id
    /// of a call still in flight is answered on that id, and the call then gets a second answer.
    @Test("a cancel reusing the call id of a call in flight is refused, and that call is answered once")
    func cancelReusingInflightCallID() async throws {
        try await withServer { server in
            let connection = try RawConnection(port: server.localPort)
            _ = connection.handshake()
            connection.send(RequestEnvelope(callID: 1, method: .submit(SubmitRequest(boardID: "b", playerID: "p", score: 1))))
            try #require(connection.readFrame()?.status == nil)
            var bytes = ByteBuffer()
            // A page of an existing board: a plan, in flight until the read batch is dispatched.
            FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 5, method: .top(TopRequest(boardID: "b"))), into: &bytes)
            FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 5, method: .cancel(callID: 99)), into: &bytes)
            FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 6, method: .ping(payload: [6])), into: &bytes)
            connection.send(Array(bytes.readableBytesView))  // one write: the three frames arrive together
            var answers: [ResponseEnvelope] = []
            while answers.count < 3, let frame = connection.readFrame() { answers.append(frame) }
            let onFive = answers.filter { $0.callID == 5 }
            #expect(onFive.count == 2, "\(answers)")
            // The second frame must be refused as a duplicate id, not answered as a cancel.
            #expect(!onFive.contains { if case .cancel? = $0.result { return true } else { return false } }, "\(onFive)")
        }
    }

    /// A "slow read" connection is never closed: the frame timeout does not count time while the
    /// server holds reads because the client does not read its answers (`armFrameCheck`: while
    /// `readHeld` it re-arms forever), and the idle timeout leaves a connection with a partial
    /// frame to the frame timeout (`checkIdle`: `partialSince == nil` required). A client that
    /// asks for a few large answers, stops reading, and then sends the first bytes of a frame
    /// keeps its connection slot and the server's buffered answers (megabytes) for as long as it
    /// likes; 10,000 such connections (max_connections) hold the memory indefinitely.
    @Test("a client that stops reading and leaves a frame unfinished is still closed by the timeouts")
    func slowReaderWithPartialFrameIsClosed() async throws {
        try await withServer(configure: {
            $0.limits.maxConnections = 1
            $0.limits.frameTimeoutSeconds = 1
            $0.limits.idleTimeoutSeconds = 1
        }) { server in
            do {
                let attacker = try RawConnection(port: server.localPort, timeoutSeconds: 10, receiveBufferBytes: 4096)
                try #require(attacker.handshake() != nil)
                let metadata = [UInt8](repeating: 7, count: 256)
                attacker.send(RequestEnvelope(callID: 1, method: .submitBatch((0..<1000).map {
                    SubmitRequest(boardID: "big", playerID: "p\($0)", score: Int64($0), metadata: metadata)
                })))
                try #require(attacker.readFrame()?.status == nil)
                // ~300 KB answers, 40 of them; then read nothing more.
                var requests = ByteBuffer()
                for callID in 10..<50 {
                    FrameEncoding.encodeRequestFrame(
                        RequestEnvelope(callID: UInt64(callID), method: .top(TopRequest(boardID: "big", limit: 1000))), into: &requests)
                }
                attacker.send(Array(requests.readableBytesView))
                let clock = ContinuousClock()
                let filling = clock.now
                while attacker.unreadBytes() < 2048 && clock.now - filling < .seconds(10) {
                    try await Task.sleep(for: .milliseconds(10))  // poll: the answers back up
                }
                // The first bytes of a frame, trickled while the server cannot write.
                for byte: UInt8 in [0, 0, 0, 0, 100, 8] {
                    attacker.send([byte])
                    try await Task.sleep(for: .milliseconds(100))
                }
                // With 1 s frame and idle timeouts the attacker must be gone within a few seconds:
                // then a new connection is admitted (max_connections = 1).
                let start = clock.now
                var admitted = false
                while clock.now - start < .seconds(30) {
                    let probe = try RawConnection(port: server.localPort, timeoutSeconds: 2)
                    if probe.handshake() != nil {
                        admitted = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(250))  // poll interval
                }
                #expect(admitted, "the non-reading connection with a partial frame was never closed")
                _ = attacker
            }
        }
    }
}
