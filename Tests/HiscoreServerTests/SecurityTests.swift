import Foundation
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreStorage
import HiscoreTestSupport
import HiscoreWire
import NIOCore
import Testing

private let adminKey = "admin-key-0123456789abcdef"
private let writerKey = "writer-key-0123456789abcdef"
private let readerKey = "reader-key-0123456789abcdef"
private let tokenSecret = "token-secret-0123456789abcdef-0123456789"

private func securedAccess() throws -> AccessControl {
    var keys = APIKeys()
    try keys.add(key: adminKey, role: .admin, name: "ops")
    try keys.add(key: writerKey, role: .writer, name: "game-server")
    try keys.add(key: readerKey, role: .reader, name: "website")
    return AccessControl(keys: keys, tokens: try PlayerTokenVerifier(secret: tokenSecret))
}

private func token(player: String, boards: [String], expiresIn: Int64 = 3600, secret: String = tokenSecret) throws -> String {
    let now = Int64(Date().timeIntervalSince1970)
    return try PlayerTokenVerifier(secret: secret).mint(playerID: player, boards: boards, expiresAt: now + expiresIn, issuedAt: now)
}

/// Runs `body` against a server with keys and a token secret, giving it a connect function.
private func withSecuredServer(
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (Int, (String?) async throws -> HiscoreClient) async throws -> Void
) async throws {
    let access = try securedAccess()
    try await withServer(configure: { config in
        config.access = access
        configure(&config)
    }) { server in
        var clients: [HiscoreClient] = []
        let connect: (String?) async throws -> HiscoreClient = { token in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            clients.append(client)
            if let token { try await client.authenticate(token: token) }
            return client
        }
        do {
            try await body(server.localPort, connect)
        } catch {
            for client in clients { try? await client.close() }
            throw error
        }
        for client in clients { try? await client.close() }
    }
}

@Suite("Security: roles, player tokens, protected mode, hostile clients")
struct SecurityTests {
    @Test("calls without credentials are UNAUTHENTICATED; ping still works")
    func unauthenticated() async throws {
        try await withSecuredServer { _, connect in
            let anonymous = try await connect(nil)
            #expect(try await anonymous.ping([1]) == [1])
            await expectStatus(.unauthenticated) { _ = try await anonymous.top(board: "b") }
            await expectStatus(.unauthenticated) { _ = try await anonymous.submit(board: "b", player: "p", score: 1) }
        }
    }

    @Test("the CLI without a token is told to pass --token or set HISCORE_TOKEN; a refused token is named as such, not as a failed connection")
    func cliNamesItsCredentialOptions() async throws {
        try await withSecuredServer { port, _ in
            let missing = try await runCLI(["top", "b", "--addr", "127.0.0.1:\(port)"])
            #expect(missing.status == 1, "\(missing)")
            #expect(missing.stderr.hasPrefix("hiscore: UNAUTHENTICATED: "), "\(missing)")
            #expect(missing.stderr.hasSuffix(" (hiscore: pass --token KEY or set HISCORE_TOKEN)\n"), "\(missing)")
            let bad = try await runCLI(["top", "b", "--addr", "127.0.0.1:\(port)", "--token", "not-a-key"])
            #expect(bad.status == 1, "\(bad)")
            #expect(bad.stderr == "hiscore: UNAUTHENTICATED: unknown API key or player token (the token given by --token or HISCORE_TOKEN)\n", "\(bad)")
        }
    }

    @Test("a large frame without credentials is refused from its first 16 KiB, the rest dropped unbuffered; one with its own valid token may come in pieces")
    func largeFrameRefusedBeforeItIsBuffered() async throws {
        try await withSecuredServer { port, _ in
            let batch = (0..<2000).map { SubmitRequest(boardID: "b", playerID: "p\($0)", score: Int64($0), metadata: [UInt8](repeating: 7, count: 200)) }
            func frame(_ callID: UInt64, token: String) -> [UInt8] {
                var buffer = ByteBuffer()
                FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: callID, authToken: token, method: .submitBatch(Array(batch.prefix(1000)))), into: &buffer)
                return Array(buffer.readableBytesView)
            }
            let stranger = try RawConnection(port: port, timeoutSeconds: 10)
            #expect(stranger.handshake() != nil)
            let refused = frame(1, token: "")
            try #require(refused.count > 200_000)
            // Its first 20 KiB only: the answer comes before the rest is sent.
            stranger.send(Array(refused.prefix(20 << 10)))
            let early = stranger.readFrame()
            #expect(early?.callID == 1 && early?.status?.code == .unauthenticated, "\(String(describing: early))")
            #expect(early?.status?.message.contains("without credentials") == true)
            // The rest is read and dropped; the connection goes on with its next frame.
            stranger.send(Array(refused.dropFirst(20 << 10)))
            stranger.send(RequestEnvelope(callID: 2, method: .ping(payload: [9])))
            let pong = stranger.readFrame()
            #expect(pong?.callID == 2 && pong?.status == nil, "\(String(describing: pong))")

            // A frame carrying its own valid key is admitted from its first bytes and applied whole.
            let keyed = try RawConnection(port: port, timeoutSeconds: 10)
            #expect(keyed.handshake() != nil)
            let admitted = frame(3, token: writerKey)
            for start in stride(from: 0, to: admitted.count, by: 8 << 10) {
                keyed.send(Array(admitted[start..<min(start + (8 << 10), admitted.count)]))
            }
            let applied = keyed.readFrame()
            #expect(applied?.callID == 3 && applied?.status == nil, "\(String(describing: applied?.status))")
            if case .submitBatch(let results)? = applied?.result {
                #expect(results.count == 1000 && results.allSatisfy { $0.status.code == .ok })
            } else {
                Issue.record("no batch answer: \(String(describing: applied))")
            }
        }
    }

    @Test("roles nest: reader < writer < admin, each refused beyond its role with PERMISSION_DENIED")
    func roles() async throws {
        try await withSecuredServer { _, connect in
            let admin = try await connect(adminKey)
            let writer = try await connect(writerKey)
            let reader = try await connect(readerKey)
            try await admin.createBoard(BoardConfig(id: "b"))
            _ = try await writer.submit(board: "b", player: "p", score: 5)
            #expect(try await reader.rank(board: "b", player: "p").entry.rank == 1)
            await expectStatus(.permissionDenied) { _ = try await reader.submit(board: "b", player: "p", score: 6) }
            await expectStatus(.permissionDenied) { try await writer.createBoard(BoardConfig(id: "c")) }
            await expectStatus(.permissionDenied) { try await writer.deleteBoard("b") }
            await expectStatus(.permissionDenied) { try await writer.erasePlayer("p") }
            #expect(try await reader.rank(board: "b", player: "p").entry.rank == 1, "the refused erasure removed nothing")
            var feed = reader.subscribe(board: "b", target: .feed).makeAsyncIterator()
            await expectStatus(.permissionDenied) { _ = try await feed.next() }
            try await admin.deleteBoard("b")
        }
    }

    @Test("a per-call auth_token works without authenticating the connection")
    func perCallToken() async throws {
        try await withSecuredServer { _, connect in
            let client = try await connect(nil)
            let result = try await client.call(.submit(SubmitRequest(boardID: "b", playerID: "p", score: 1)), authToken: writerKey)
            guard case .submit(let response) = result else { Issue.record("not a submit result"); return }
            #expect(response.created)
            await expectStatus(.unauthenticated) { _ = try await client.call(.top(TopRequest(boardID: "b")), authToken: "wrong-key-0123456789") }
        }
    }

    @Test("a bad key is UNAUTHENTICATED, later calls stay unauthenticated, and repeated failures close the connection")
    func failedAuthentication() async throws {
        try await withSecuredServer { port, connect in
            let client = try await connect(nil)
            await expectStatus(.unauthenticated) { try await client.authenticate(token: "not-a-key-at-all-xxxx") }
            await expectStatus(.unauthenticated) { _ = try await client.top(board: "b") }
            let raw = try RawConnection(port: port)
            _ = raw.handshake()
            for callID in 1...5 { raw.send(RequestEnvelope(callID: UInt64(callID), method: .authenticate(token: "guess-\(callID)-xxxxxxxxxxxx"))) }
            for callID in 1...5 { #expect(raw.readFrame()?.callID == UInt64(callID)) }
            // Then the reason, at connection level, before the close.
            let notice = raw.readFrame()
            #expect(notice?.callID == 0 && notice?.status?.code == .unauthenticated, "\(String(describing: notice))")
            #expect(notice?.status?.message.contains("5 failed authentications in a row") == true)
            #expect(raw.waitForClose())
        }
    }

    @Test("a connection closed for failed authentications is logged, with its peer, at most once a minute")
    func failedAuthenticationsAreLogged() async throws {
        let log = CapturedLog()
        let access = try securedAccess()
        try await withServer(configure: { $0.access = access }, logger: log.logger) { server in
            for _ in 0..<2 {
                let raw = try RawConnection(port: server.localPort)
                _ = raw.handshake()
                for callID in 1...5 { raw.send(RequestEnvelope(callID: UInt64(callID), method: .authenticate(token: "guess-\(callID)-xxxxxxxxxxxx"))) }
                #expect(raw.waitForClose())
            }
            #expect(await log.waitFor("was closed after 5 failed authentications in a row (max_failed_authentications)", seconds: 10))
            #expect(log.contains("a connection from 127.0.0.1:"), "the peer is named")
            #expect(log.count("failed authentications in a row") == 1, "the second close, within the minute, is counted for the next line")
        }
    }

    @Test("player tokens: read their boards, submit only their own score on client_writes boards")
    func playerTokens() async throws {
        try await withSecuredServer { _, connect in
            let admin = try await connect(adminKey)
            try await admin.createBoard(BoardConfig(id: "open", clientWrites: true))
            try await admin.createBoard(BoardConfig(id: "closed"))
            try await admin.createBoard(BoardConfig(id: "secret"))
            try await admin.createBoard(BoardConfig(id: "elsewhere", clientWrites: true))
            let writer = try await connect(writerKey)
            _ = try await writer.submit(board: "closed", player: "alice", score: 10)
            let alice = try await connect(try token(player: "alice", boards: ["open", "closed"]))
            #expect(try await alice.rank(board: "closed", player: "alice").entry.rank == 1)
            await expectStatus(.permissionDenied) { _ = try await alice.top(board: "secret") }
            _ = try await alice.submit(board: "open", player: "alice", score: 7)
            await expectStatus(.permissionDenied) { _ = try await alice.submit(board: "open", player: "bob", score: 7) }
            await expectStatus(.permissionDenied) { _ = try await alice.submit(board: "closed", player: "alice", score: 99) }
            // A board open to client writes but not granted by the token: no write (its answer
            // would carry a rank the token may not read).
            await expectStatus(.permissionDenied) { _ = try await alice.submit(board: "elsewhere", player: "alice", score: 5) }
            #expect(try await writer.top(board: "elsewhere").entries.isEmpty)
            await expectStatus(.permissionDenied) { _ = try await alice.listBoards() }
            await expectStatus(.permissionDenied) { try await alice.removePlayer(board: "open", player: "alice") }
            await expectStatus(.permissionDenied) { try await alice.erasePlayer("alice") }
            let results = try await alice.submitBatch([
                SubmitRequest(boardID: "open", playerID: "alice", score: 8), SubmitRequest(boardID: "open", playerID: "mallory", score: 1),
            ])
            #expect(results.map(\.status.code) == [.ok, .permissionDenied])
            // Subscriptions follow the same rules.
            var allowed = alice.subscribe(board: "closed", target: .player("alice")).makeAsyncIterator()
            #expect(try await allowed.next()?.snapshot == true)
            var denied = alice.subscribe(board: "secret", target: .top(10)).makeAsyncIterator()
            await expectStatus(.permissionDenied) { _ = try await denied.next() }
        }
    }

    @Test("expired, forged, tampered and alg-none tokens are UNAUTHENTICATED")
    func badTokens() async throws {
        try await withSecuredServer { _, connect in
            let client = try await connect(nil)
            let expired = try token(player: "p", boards: ["*"], expiresIn: -3600)
            await expectStatus(.unauthenticated) { try await client.authenticate(token: expired) }
            let forged = try token(player: "p", boards: ["*"], secret: "another-secret-0123456789abcdef-0123456789")
            await expectStatus(.unauthenticated) { try await client.authenticate(token: forged) }
            let good = try token(player: "p", boards: ["b"])
            var parts = good.split(separator: ".").map(String.init)
            parts[1] = Base64URLForTests.encode(#"{"sub":"admin","boards":["*"],"exp":9999999999}"#)
            await expectStatus(.unauthenticated) { try await client.authenticate(token: parts.joined(separator: ".")) }
            let none = Base64URLForTests.encode(#"{"alg":"none","typ":"JWT"}"#) + "." + parts[1] + "."
            await expectStatus(.unauthenticated) { try await client.authenticate(token: none) }
            let identity = try await client.authenticate(token: good)
            #expect(identity.role == .player && identity.playerID == "p" && identity.boards == ["b"])
        }
    }

    @Test("a token whose exp is near Int64.max is valid, not a trap, when verified and on every call after")
    func farExpiry() async throws {
        let verifier = try PlayerTokenVerifier(secret: tokenSecret)
        let token = verifier.mint(playerID: "p", boards: ["*"], expiresAt: .max, issuedAt: 0)
        let claims = try verifier.verify(token, now: Int64(Date().timeIntervalSince1970))
        #expect(claims.playerID == "p" && claims.expiresAt == .max)
        #expect(!claims.isExpired(at: .max, leewaySeconds: PlayerTokenVerifier.leewaySeconds))
        #expect(throws: PlayerTokenVerifier.Failure.self) {
            _ = try verifier.verify(verifier.mint(playerID: "p", boards: ["*"], expiresAt: .min, issuedAt: 0), now: 0)
        }
        // Each call authorizes the token again (the expiry check with its leeway): a far expiry
        // must not trap there either.
        try await withSecuredServer { _, connect in
            try await connect(adminKey).createBoard(BoardConfig(id: "b"))
            let player = try await connect(token)
            #expect(try await player.top(board: "b").entries.isEmpty)
            let perCall = try await connect(nil)
            try await perCall.authenticate(token: token)
            #expect(try await perCall.count(board: "b").count == 0)
        }
    }

    @Test("a subscription opened with a player token ends UNAUTHENTICATED when the token expires; a key's does not")
    func subscriptionOutlivesNoToken() async throws {
        try await withSecuredServer { _, connect in
            let writer = try await connect(writerKey)
            try await connect(adminKey).createBoard(BoardConfig(id: "live"))
            _ = try await writer.submit(board: "live", player: "me", score: 1)
            let keyed = writer.subscribe(board: "live", target: .player("me"), minInterval: .milliseconds(20))
            let verifier = try PlayerTokenVerifier(secret: tokenSecret)
            // A token valid for a few more seconds (past the 30 s clock-skew leeway). On a loaded
            // machine the subscribe can reach the server after such a token expired (refused,
            // no snapshot): then again with a longer one.
            var ended: (snapshot: Bool, error: HiscoreError?) = (false, nil)
            for seconds in [2, 6, 20] where !ended.snapshot {
                let now = Int64(Date().timeIntervalSince1970)
                let expiring = verifier.mint(
                    playerID: "me", boards: ["live"], expiresAt: now - PlayerTokenVerifier.leewaySeconds + Int64(seconds),
                    issuedAt: now - 60)
                let player = try await connect(expiring)
                let stream = player.subscribe(board: "live", target: .player("me"), minInterval: .milliseconds(20))
                // The stream must have started (its snapshot), then end when the token runs out.
                ended = try await within(.seconds(seconds + 15), "the expiring stream ends") {
                    var snapshot = false
                    do {
                        for try await event in stream { snapshot = snapshot || event.snapshot }
                        return (snapshot, nil)
                    } catch let error as HiscoreError {
                        return (snapshot, error)
                    }
                }
            }
            #expect(ended.snapshot, "the subscription was refused instead of starting")
            #expect(ended.error?.code == .unauthenticated, "\(String(describing: ended.error))")
            // The key's stream goes on: a write still reaches it.
            var iterator = keyed.makeAsyncIterator()
            _ = try await iterator.next()  // snapshot
            _ = try await writer.submit(board: "live", player: "rival", score: 5)
            let next = try await iterator.next()
            guard case .player(let change)? = next?.change else { Issue.record("no event"); return }
            #expect(change.entry.rank == 2)
        }
    }

    @Test("a token whose sub is not a valid player id is refused")
    func badSubject() async throws {
        let verifier = try PlayerTokenVerifier(secret: tokenSecret)
        let now = Int64(Date().timeIntervalSince1970)
        // "\u{212A}ing" (KELVIN SIGN) compares equal to "King" as a Swift String.
        for subject in ["has space", "\u{212A}ing", String(repeating: "x", count: 129)] {
            let token = verifier.mint(playerID: subject, boards: ["*"], expiresAt: now + 60, issuedAt: now)
            #expect(throws: PlayerTokenVerifier.Failure.self, "\(subject)") { _ = try verifier.verify(token, now: now) }
        }
        try await withSecuredServer { _, connect in
            let client = try await connect(nil)
            let kelvin = verifier.mint(playerID: "\u{212A}ing", boards: ["*"], expiresAt: now + 60, issuedAt: now)
            await expectStatus(.unauthenticated) { try await client.authenticate(token: kelvin) }
        }
    }

    @Test("rejected per-call tokens count towards the failed-authentication limit; an accepted one starts it again")
    func perCallTokenFailures() async throws {
        let access = try securedAccess()
        try await withServer(configure: { $0.access = access }) { server in
            let connection = try RawConnection(port: server.localPort)
            _ = connection.handshake()
            let good = try token(player: "p", boards: ["*"])
            var callID: UInt64 = 0
            func ping(_ token: String) -> StatusCodeAlias? {
                callID += 1
                connection.send(RequestEnvelope(callID: callID, authToken: token, method: .ping(payload: [])))
                return connection.readFrame().map { $0.status?.code ?? .ok }
            }
            for _ in 0..<4 { #expect(ping("not-a-token") == .unauthenticated) }
            #expect(ping(good) == .ok)
            for _ in 0..<4 { #expect(ping("not-a-token") == .unauthenticated) }
            #expect(ping("still-not-a-token") == .unauthenticated)  // the 5th in a row: answered, then closed
            #expect(connection.waitForClose())
        }
    }

    @Test("protected mode: no keys refuses a non-loopback address, keys allow it")
    func protectedMode() async throws {
        var config = ServerConfiguration()
        config.host = "0.0.0.0"
        config.port = 0
        config.adminPort = nil
        config.durability = .memory
        await #expect(throws: ProtectedMode.Refusal.self) { _ = try await HiscoreServer.start(configuration: config) }
        #expect(throws: Never.self) { try ProtectedMode.check(host: "0.0.0.0", access: try securedAccess()) }
        #expect(throws: Never.self) { try ProtectedMode.check(host: "127.0.0.1", access: AccessControl()) }
        #expect(throws: ProtectedMode.Refusal.self) { try ProtectedMode.check(host: "10.1.2.3", access: AccessControl()) }
        // Names are not resolved: only loopback literals (and localhost) pass.
        for host in ["127.example.com", "127.0.0.1.example.com", "127.0.0", "127..0.1", "127.0.0.256"] {
            #expect(throws: ProtectedMode.Refusal.self, "\(host)") { try ProtectedMode.check(host: host, access: AccessControl()) }
        }
        #expect(ProtectedMode.isLoopback("127.1.2.3") && ProtectedMode.isLoopback("localhost") && ProtectedMode.isLoopback("::1"))
    }

    @Test("keys files: a # inside a key is part of it; a field starting with # starts a comment")
    func keysFile() throws {
        let keys = try APIKeys.parse(file: """
            # comment line
            writer abcdefghijklmnop#rest   game-server # trailing comment
            reader 0123456789abcdefXYZ
              #indented comment
            """, source: "keys")
        #expect(keys.match("abcdefghijklmnop#rest")?.role == .writer)
        #expect(keys.match("abcdefghijklmnop") == nil)
        #expect(keys.match("0123456789abcdefXYZ")?.role == .reader)
        #expect(throws: KeyConfigurationError.self) { try APIKeys.parse(file: "writer", source: "keys") }
    }

    @Test("the per-connection rate limit answers RESOURCE_EXHAUSTED and the connection stays usable")
    func rateLimit() async throws {
        try await withServer(configure: { $0.limits.maxCallsPerSecondPerConnection = 10 }) { server in
            let raw = try RawConnection(port: server.localPort)
            _ = raw.handshake()
            var burst = ByteBufferBuilder()
            for callID in 1...60 { burst.append(RequestEnvelope(callID: UInt64(callID), method: .ping(payload: []))) }
            raw.send(burst.bytes)
            var codes: [StatusCodeAlias] = []
            for _ in 1...60 { codes.append(raw.readFrame()?.status?.code ?? .ok) }
            #expect(codes.filter { $0 == .ok }.count <= 22)
            #expect(codes.filter { $0 == .resourceExhausted }.count >= 38)
        }
        // Frames that do not decode spend the budget too (each costs a decode).
        try await withServer(configure: { $0.limits.maxCallsPerSecondPerConnection = 10 }) { server in
            let raw = try RawConnection(port: server.localPort)
            _ = raw.handshake()
            let garbage: [UInt8] = [0, 0, 0, 0, 2, 0xFF, 0xFF]
            raw.send(Array((0..<60).map { _ in garbage }.joined()))
            var codes: [StatusCodeAlias] = []
            for _ in 1...60 { codes.append(raw.readFrame()?.status?.code ?? .ok) }
            #expect(codes.filter { $0 == .invalidArgument }.count <= 22, "\(codes)")
            #expect(codes.filter { $0 == .resourceExhausted }.count >= 38, "\(codes)")
        }
    }

    @Test("on a keyed server a connection that presents no valid credential in time is closed, pings or not; one that does stays")
    func authenticationTimeout() async throws {
        let access = try securedAccess()
        try await withServer(configure: {
            $0.access = access
            $0.limits.authenticationTimeoutSeconds = 1
        }) { server in
            try await offCooperativePool {
                let anonymous = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = anonymous.handshake()
                // Pings every 0.25 s (pacing, as in activeConnectionIsNotIdle): answered, but they
                // are not credentials; the connection must be closed about a second in.
                var notice: ResponseEnvelope?
                for call in UInt64(1)...12 {
                    usleep(250_000)
                    anonymous.send(RequestEnvelope(callID: call, method: .ping(payload: [])))
                    guard let frame = anonymous.readFrame() else { break }  // closed
                    if frame.callID == 0 {
                        notice = frame
                        break
                    }
                }
                #expect(notice?.status?.code == .unauthenticated, "no close notice after 3 s without credentials")
                #expect(anonymous.waitForClose())
                let keyed = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = keyed.handshake()
                keyed.send(RequestEnvelope(callID: 1, method: .authenticate(token: readerKey)))
                #expect(keyed.readFrame()?.status?.code ?? .ok == .ok)
                usleep(1_500_000)  // past the deadline (pacing, not synchronization)
                keyed.send(RequestEnvelope(callID: 2, method: .ping(payload: [])))
                #expect(keyed.readFrame()?.callID == 2)
            }
        }
    }

    @Test("on a keyed server a large frame without a valid credential is refused before it is decoded; with one it is served")
    func largeFrameNeedsCredentials() async throws {
        try await withSecuredServer { port, connect in
            try await connect(adminKey).createBoard(BoardConfig(id: "b"))
            let raw = try RawConnection(port: port)
            _ = raw.handshake()
            // A request envelope (call id 9, no token) whose body is 20 KB of garbage: decoded, it
            // would be INVALID_ARGUMENT; refused unread, it is UNAUTHENTICATED.
            // call_id = 9 (field 1, varint), then field 11 (submit_batch) of 20,000 bytes.
            let body: [UInt8] = [0x08, 9, 0x5A, 0xA0, 0x9C, 0x01] + [UInt8](repeating: 0xFF, count: 20_000)
            raw.send([0] + withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + body)
            let refused = raw.readFrame()
            #expect(refused?.callID == 9 && refused?.status?.code == .unauthenticated, "\(String(describing: refused))")
            // The same size with a valid per-call token is decoded and answered.
            var batch = RequestEnvelope(callID: 10, method: .submitBatch((0..<600).map {
                SubmitRequest(boardID: "b", playerID: "player-\($0)", score: Int64($0))
            }))
            batch.authToken = writerKey
            raw.send(batch)
            let served = raw.readFrame()
            #expect(served?.callID == 10 && (served?.status?.code ?? .ok) == .ok, "\(String(describing: served?.status))")
        }
    }

    @Test("a silent connection is closed after the idle timeout")
    func idleTimeout() async throws {
        try await withServer(configure: { $0.limits.idleTimeoutSeconds = 1 }) { server in
            try await offCooperativePool {
                let idle = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = idle.handshake()
                #expect(idle.waitForClose())
            }
        }
    }

    @Test("a connection that keeps calling outlives the idle timeout; once silent it is closed")
    func activeConnectionIsNotIdle() async throws {
        try await withServer(configure: { $0.limits.idleTimeoutSeconds = 2 }) { server in
            try await offCooperativePool {
                let active = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = active.handshake()
                // Calls every 0.25 s for 3.5 s: each well within the timeout of the one before, the
                // last far past it from the first (pacing what the test is about, not waiting for the
                // server). The thread sleeps, not the task: this connection blocks its thread anyway
                // (one of its own, off the cooperative pool), and a task's wake-up can lag by
                // seconds while other tests hold the cooperative pool.
                for call in UInt64(1)...14 {
                    usleep(250_000)
                    active.send(RequestEnvelope(callID: call, method: .ping(payload: [])))
                    #expect(active.readFrame()?.callID == call, "call \(call) at \(Double(call) * 0.25) s")
                }
                #expect(active.waitForClose())
            }
        }
    }

    @Test("bytes of an unfinished frame trickled in do not extend the frame timeout")
    func trickledFrameTimesOut() async throws {
        try await withServer(configure: { $0.limits.frameTimeoutSeconds = 1 }) { server in
            try await offCooperativePool {
                let slow = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = slow.handshake()
                slow.send([0, 0, 0, 4, 0])  // a frame of 1024 bytes...
                // ...one byte every 0.25 s for 4 s (pacing what the test is about; a thread sleep, as
                // in activeConnectionIsNotIdle). Each byte is a read, none finishes the frame: the
                // connection must be closed about a second after the frame began, long before the
                // trickle ends (the idle timeout, 300 s, does not apply while a frame is on its way).
                var closedAt: Int?
                for step in 1...16 {
                    usleep(250_000)
                    slow.send([1])
                    if slow.isClosedNow() {
                        closedAt = step
                        break
                    }
                }
                #expect(closedAt != nil, "still open after 4 s of trickled bytes")
            }
        }
    }

    @Test("a frame not finished within the frame timeout closes the connection (the idle timeout, 300 s, would not yet)")
    func frameTimeout() async throws {
        try await withServer(configure: { $0.limits.frameTimeoutSeconds = 1 }) { server in
            try await offCooperativePool {
                let stalled = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = stalled.handshake()
                stalled.send([0, 0, 0, 4, 0] + [UInt8](repeating: 7, count: 100))  // 100 of 1024 bytes, then nothing
                #expect(stalled.waitForClose())
                // A connection whose frames complete is not affected.
                let healthy = try RawConnection(port: server.localPort, timeoutSeconds: 10)
                _ = healthy.handshake()
                healthy.send(RequestEnvelope(callID: 1, method: .ping(payload: [])))
                #expect(healthy.readFrame()?.callID == 1)
            }
        }
    }

    @Test("start-up limits out of range are refused, naming the flag", arguments: [
        ("--idle-timeout", "0", "--idle-timeout must be at least 1"),
        ("--preface-timeout", "-5", "--preface-timeout must be at least 1"),
        ("--frame-timeout", "0", "--frame-timeout must be at least 1"),
        ("--shards", "0", "--shards must be 1...256"),
        ("--max-page-entries", "5000000000", "--max-page-entries must be at most 4294967295"),
        ("--max-inflight-calls", "4294967296", "--max-inflight-calls must be at most 4294967295"),
        ("--admin-port", "70000", "--admin-port must be 0...65535, or -1 for none"),
        ("--admin-port", "-2", "--admin-port must be 0...65535, or -1 for none"),
        ("--max-calls-per-second", "-1", "--max-calls-per-second must be 0 (no limit) or more"),
        ("--capacity", "0", "--capacity must be at least 1 call per second"),
        ("--max-stream-window-bytes", "0", "--max-stream-window-bytes must be at least 1"),
        ("--max-stream-window-entries", "0", "--max-stream-window-entries must be at least 1"),
        ("--max-feed-backlog-bytes", "-1", "--max-feed-backlog-bytes must be at least 1"),
        ("--max-top-cache-bytes", "-1", "--max-top-cache-bytes must be at least 0"),
        ("--max-inflight-batch-items", "0", "--max-inflight-batch-items must be at least 1"),
        ("--exit-with-process", "0", "--exit-with-process: 0 is not a process id"),
        ("--shutdown-grace", "-1", "--shutdown-grace must be 0...3600"),
        ("--shutdown-grace", "3601", "--shutdown-grace must be 0...3600"),
    ])
    func startUpLimits(flag: String, value: String, message: String) async throws {
        try await Self.expectRefusedAtStart(["\(flag)=\(value)"], saying: message)
    }

    @Test("a bad byte size from the environment names the variable, not the flag")
    func environmentByteSizeNamesTheVariable() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        do {
            let server = try await ServerProcess.start(
                arguments: ["--data-dir", directory.path, "--durability", "memory"], environment: ["HISCORE_MAX_MEMORY": "-1"])
            await server.stop()
            Issue.record("hiscored started with HISCORE_MAX_MEMORY=-1")
        } catch ServerProcessError.didNotStart(let log) {
            #expect(log.contains("HISCORE_MAX_MEMORY: '-1' is not a byte size"), "\(log)")
        }
    }

    /// hiscored with `arguments` (and a fresh data dir) must not start, and must say `message`.
    private static func expectRefusedAtStart(_ arguments: [String], saying message: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        do {
            let server = try await ServerProcess.start(arguments: ["--data-dir", directory.path, "--durability", "memory"] + arguments)
            await server.stop()
            Issue.record("hiscored started with \(arguments)")
        } catch ServerProcessError.didNotStart(let log) {
            #expect(log.contains(message), "\(log)")
        }
    }

    /// `--max-memory -1` (the value as its own argument, as operators type it) was read by the
    /// argument parser as a missing value followed by an unknown option "-1".
    @Test("a negative value given as its own argument reaches the flag's own check", arguments: [
        ("--max-memory", "-1", "--max-memory: '-1' is not a byte size"),
        ("--max-top-cache-bytes", "-1", "--max-top-cache-bytes must be at least 0"),
        ("--admin-port", "-2", "--admin-port must be 0...65535, or -1 for none"),
        ("--max-calls-per-second", "-1", "--max-calls-per-second must be 0 (no limit) or more"),
        ("--port", "-1", "--port must be 0...65535"),
    ])
    func negativeValueArguments(flag: String, value: String, message: String) async throws {
        try await Self.expectRefusedAtStart([flag, value], saying: message)
    }

    @Test("connections beyond max_connections are closed at once; the others are served")
    func connectionLimit() async throws {
        try await withServer(configure: { $0.limits.maxConnections = 4 }) { server in
            let kept = try (0..<4).map { _ in try RawConnection(port: server.localPort) }
            for (index, connection) in kept.enumerated() { #expect(connection.handshake() != nil, "connection \(index)") }
            for _ in 0..<10 {
                let extra = try RawConnection(port: server.localPort)
                #expect(extra.waitForClose())
            }
            kept[0].send(RequestEnvelope(callID: 1, method: .ping(payload: [])))
            #expect(kept[0].readFrame()?.callID == 1)
        }
    }

    @Test("hostile frames: huge repeated fields, invalid UTF-8, NUL in a string, zero-length frames; the server keeps serving")
    func hostileFrames() async throws {
        try await withServer { server in
            let raw = try RawConnection(port: server.localPort)
            _ = raw.handshake()
            // entries with 20,000 ids: over max_players_per_query, refused without a crash.
            raw.send(RequestEnvelope(callID: 1, method: .entries(EntriesRequest(boardID: "b", playerIDs: (0..<20_000).map { "p\($0)" }))))
            let tooMany = raw.readFrame()
            #expect(tooMany?.callID == 1 && tooMany?.status?.code == .resourceExhausted)
            #expect(tooMany?.status?.message == "20000 player ids; at most 1000 allowed (max_players_per_query)")
            // A submit whose player_id holds a NUL byte ("p\0x"): refused, not read as "p".
            let nulSubmit: [UInt8] = [0x0a, 0x01, 0x62, 0x12, 0x03, 0x70, 0x00, 0x78, 0x18, 0x01]
            let nulRequest: [UInt8] = [0x08, 0x04, 0x52, UInt8(nulSubmit.count)] + nulSubmit
            raw.send([0, 0, 0, 0, UInt8(nulRequest.count)] + nulRequest)
            let nul = raw.readFrame()
            #expect(nul?.callID == 4 && nul?.status?.code == .invalidArgument)
            #expect(nul?.status?.message.contains("player_id: contains a NUL byte") == true)
            // A submit whose player_id is invalid UTF-8 (0xff), hand-encoded.
            let submit: [UInt8] = [0x0a, 0x01, 0x62, 0x12, 0x02, 0x70, 0xff, 0x18, 0x01]
            let request: [UInt8] = [0x08, 0x02, 0x52, UInt8(submit.count)] + submit
            raw.send([0, 0, 0, 0, UInt8(request.count)] + request)
            let utf8 = raw.readFrame()
            #expect(utf8?.callID == 2 && utf8?.status?.code == .invalidArgument)
            raw.send([0, 0, 0, 0, 0])
            #expect(raw.readFrame()?.status?.code == .invalidArgument)
            raw.send(RequestEnvelope(callID: 3, method: .ping(payload: [9])))
            #expect(raw.readFrame()?.result == .ping(payload: [9]))
        }
    }
}

enum Base64URLForTests {
    static func encode(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// Hostile traffic against a real server process, measured from the outside: the allocator's
/// figure (from /metrics) must not grow with the amount of hostile input, and a good client is
/// served throughout.
@Suite("Hostile clients keep server memory bounded")
struct HostileMemoryTests {
    private func allocated(_ adminPort: Int) async throws -> Int {
        Int(try await metricValue("hiscore_jemalloc_allocated_bytes", adminPort: adminPort) ?? -1)
    }

    private func openConnections(_ adminPort: Int) async throws -> Int {
        Int(try await metricValue("hiscore_connections", adminPort: adminPort) ?? -1)
    }

    /// Polls /metrics until the server reports `expected` open connections; closes are noticed by
    /// the server asynchronously, so a test that reasons about the limit must wait for them.
    private func waitForOpenConnections(_ adminPort: Int, _ expected: Int, seconds: Double = 10) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await openConnections(adminPort) == expected { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test("floods of half-open, silent, oversized and garbage connections do not grow memory")
    func floods() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--max-connections", "100"], adminPort: true
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            let good = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            _ = try await good.submit(board: "b", player: "p", score: 1)
            let before = try await allocated(adminPort)
            for round in 0..<3 {
                // The previous round's connections are closed by the client; wait until the server has
                // seen every close, or this round would start with slots still taken.
                #expect(try await waitForOpenConnections(adminPort, 1), "round \(round): previous connections not released")
                var connections: [RawConnection] = []
                for index in 0..<250 {
                    let connection = try RawConnection(port: server.port, timeoutSeconds: 2)
                    switch index % 5 {
                    case 0: break  // silent: never sends the preface
                    case 1: connection.send(Array("HISC".utf8))  // half a preface
                    case 2: connection.send(ConnectionPreface.bytes + [0, 0xff, 0xff, 0xff, 0xff])  // 4 GiB declared
                    case 3: connection.send(ConnectionPreface.bytes + [0, 0, 0, 0x10, 0] + [UInt8](repeating: 7, count: 2000))  // truncated
                    default: connection.send([UInt8](repeating: 0x41, count: 4096))  // garbage
                    }
                    connections.append(connection)
                }
                // Which of the flood's connections were admitted depends on how the server's accept loop
                // raced their closes, so the limit is probed directly: connections that complete the
                // handshake are admitted and stay, until one is refused with a close and no hello.
                // At most max_connections (100) can be admitted, so the probe ends within 101 tries.
                var refused = false
                for _ in 0...100 {
                    let probe = try RawConnection(port: server.port, timeoutSeconds: 10)
                    guard probe.handshake() != nil else {
                        refused = true
                        break
                    }
                    connections.append(probe)
                }
                #expect(refused, "round \(round): max_connections never refused a connection")
                #expect(try await openConnections(adminPort) <= 100, "round \(round)")
                #expect(try await good.ping([1]) == [1])
                connections.removeAll()
            }
            let after = try await allocated(adminPort)
            #expect(before > 0 && after > 0)
            #expect(after - before < 8 << 20, "allocated grew from \(before) to \(after) bytes")
            #expect(try await good.rank(board: "b", player: "p").entry.rank == 1)
            try await good.close()
        }
    }
}
