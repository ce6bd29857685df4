import Foundation
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreWire
import HiscoreTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Keys and certificates replaced while the server runs (SIGHUP in `hiscored`): rotation
/// without a restart, and revocation of a key that leaked.
@Suite("Credentials reloaded while serving")
struct CredentialReloadTests {
    private static let writerA = "writer-key-aaaaaaaaaaaa"
    private static let writerB = "writer-key-bbbbbbbbbbbb"
    private static let readerC = "reader-key-cccccccccccc"

    private static func keys(_ lines: [(Role, String, String)]) throws -> AccessControl {
        var keys = APIKeys()
        for (role, key, name) in lines { try keys.add(key: key, role: role, name: name) }
        return AccessControl(keys: keys)
    }

    private static func connect(_ server: HiscoreServer, key: String) async throws -> HiscoreClient {
        try await connect(port: server.localPort, key: key)
    }

    private static func connect(port: Int, key: String) async throws -> HiscoreClient {
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: port)
        _ = try await client.authenticate(token: key)
        return client
    }

    /// What a client whose connection the reload closed sees on its next call.
    private static func expectRevoked(_ body: () async throws -> Void) async {
        let message = await expectStatus(.unavailable, body)
        #expect(message.contains("UNAUTHENTICATED") && message.contains("reloaded its keys"), "\(message)")
    }

    /// Polls the server's answered bytes (bounded) until they stop growing past 1 MB: a client
    /// that reads nothing has filled its socket, and the rest waits in the server. Returns them.
    private static func waitUntilAnswersStop(adminPort: Int) async throws -> Double {
        var previous = -1.0
        for _ in 0..<400 {
            let sent = try await metricValue("hiscore_sent_bytes_total", adminPort: adminPort) ?? 0
            if sent > 1_000_000 && sent == previous { break }
            previous = sent
            try await Task.sleep(for: .milliseconds(50))  // poll interval, not synchronization
        }
        return previous
    }

    /// A raw connection with writer key A that asked for `requests` answers of ~55 KB (a top
    /// 200 with 256 bytes of metadata each: ~13 MB in all, past what loopback sockets buffer,
    /// 4 MiB at most here, with a 4 KB receive buffer on the client) and read none; once the
    /// server stops answering, a reload revokes key A. `body` gets the server, the connection,
    /// the admin port and the bytes answered before the reload.
    private static func withRevokedClientBehind(
        requests: Int, _ body: (HiscoreServer, RawConnection, _ adminPort: Int, _ answered: Double) async throws -> Void
    ) async throws {
        let first = try keys([(.writer, writerA, "a"), (.reader, readerC, "c")])
        try await withServer(configure: {
            $0.access = first
            $0.adminPort = 0
        }) { server in
            let adminPort = try #require(server.adminPort)
            let setup = try await connect(server, key: writerA)
            _ = try await setup.submitBatch((0..<200).map {
                SubmitRequest(boardID: "big", playerID: "p\($0)", score: Int64($0), metadata: [UInt8](repeating: 7, count: 256))
            })
            try await setup.close()
            let connection = try RawConnection(port: server.localPort, timeoutSeconds: 10, receiveBufferBytes: 4096)
            var burst = ByteBufferBuilder()
            for index in 0..<requests {
                burst.append(RequestEnvelope(callID: UInt64(10 + index), method: .top(TopRequest(boardID: "big", limit: 200))))
            }
            let requestBytes = burst.bytes
            let authenticated = await offCooperativePool { () -> Bool in
                _ = connection.handshake()
                connection.send(RequestEnvelope(callID: 1, method: .authenticate(token: writerA)))
                guard connection.readFrame()?.status == nil else { return false }
                connection.send(requestBytes)
                return true
            }
            try #require(authenticated)
            let answered = try await waitUntilAnswersStop(adminPort: adminPort)
            #expect(try await server.replaceAccess(try keys([(.writer, writerB, "b"), (.reader, readerC, "c")])) == 1)
            try await body(server, connection, adminPort, answered)
        }
    }

    /// A connection closed with a status of its own is closed once the status is written (or
    /// after `CallHandler.closingGrace`): a close at once dropped what its full socket had not
    /// taken, so a client revoked while behind on its answers saw the connection end without
    /// the reason.
    @Test("a connection revoked while its socket is full still gets its UNAUTHENTICATED status, after the answers before it")
    func revokedWithFullSocket() async throws {
        let requests = 240
        try await Self.withRevokedClientBehind(requests: requests) { _, connection, _, answered in
            let (answers, last) = await offCooperativePool { () -> (Int, ResponseEnvelope?) in
                var answers = 0
                var last: ResponseEnvelope?
                while let frame = connection.readFrame() {
                    if frame.callID == 0 { last = frame } else { answers += 1 }
                }
                return (answers, last)
            }
            // What the server had produced when the reload came was past what the sockets hold
            // (4 MiB sent at most, 8 KB received): the rest was waiting in the server.
            #expect(answered > Double(5 << 20), "\(answered) bytes answered before the reload")
            #expect(answers == requests, "every answer, then the status")
            #expect(last?.status?.code == .unauthenticated, "\(String(describing: last))")
            #expect(last?.status?.message.contains("reloaded its keys") == true)
        }
    }

    /// The wait for a closing status to be written is bounded: a client that never reads is
    /// closed after `CallHandler.closingGrace` all the same.
    @Test("a revoked connection whose client never reads is closed after the closing grace")
    func revokedNonReaderIsClosed() async throws {
        try await Self.withRevokedClientBehind(requests: 240) { _, connection, adminPort, _ in
            let revokedAt = ContinuousClock.now
            // The client reads nothing; the server must close it anyway (bounded wait).
            var open = 1.0
            for _ in 0..<300 where open > 0 {
                open = try await metricValue("hiscore_connections", adminPort: adminPort) ?? -1
                if open > 0 { try await Task.sleep(for: .milliseconds(100)) }  // poll interval
            }
            #expect(open == 0, "the revoked connection is still open \(ContinuousClock.now - revokedAt) after the reload")
            withExtendedLifetime(connection) {}
        }
    }

    @Test("a reload closes the connections that used a removed key or one whose role changed; the others and their streams go on")
    func replaceKeys() async throws {
        let first = try Self.keys([(.writer, Self.writerA, "a"), (.reader, Self.readerC, "c")])
        try await withServer(configure: { $0.access = first }) { server in
            let revoked = try await Self.connect(server, key: Self.writerA)
            _ = try await revoked.submit(board: "b", player: "alice", score: 10)
            let kept = try await Self.connect(server, key: Self.readerC)
            var events = kept.subscribe(board: "b", target: .player("alice")).makeAsyncIterator()
            _ = try await events.next()

            // A connection that never authenticated and gives the key with each call.
            let perCall = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await perCall.call(.submit(SubmitRequest(boardID: "b", playerID: "erin", score: 5)), authToken: Self.writerA)

            let closed = try await server.replaceAccess(
                try Self.keys([(.writer, Self.writerB, "b"), (.reader, Self.readerC, "c")]))
            #expect(closed == 2)
            await Self.expectRevoked {
                _ = try await perCall.call(.submit(SubmitRequest(boardID: "b", playerID: "erin", score: 6)), authToken: Self.writerA)
            }
            try? await perCall.close()
            await Self.expectRevoked { _ = try await revoked.submit(board: "b", player: "alice", score: 11) }
            await expectStatus(.unauthenticated) { _ = try await Self.connect(server, key: Self.writerA) }

            let writer = try await Self.connect(server, key: Self.writerB)
            _ = try await writer.submit(board: "b", player: "bob", score: 20)
            #expect(try await kept.top(board: "b", limit: 10).entries.map(\.playerID) == ["bob", "alice", "erin"])
            let event = try #require(try await events.next())
            guard case .player(let change) = event.change else { Issue.record("not a player event: \(event)"); return }
            #expect(change.entry.rank == 2, "the kept key's stream goes on")

            // The same key with another role: what the connection was allowed no longer holds.
            #expect(try await server.replaceAccess(try Self.keys([(.writer, Self.writerB, "b"), (.writer, Self.readerC, "c")])) == 1)
            await Self.expectRevoked { _ = try await kept.top(board: "b", limit: 10) }
            _ = try await writer.submit(board: "b", player: "carol", score: 30)

            // No keys at all would be protected mode (everything allowed): refused, keys kept.
            await #expect(throws: HiscoreServer.ReloadRefusal.self) { try await server.replaceAccess(AccessControl()) }
            // Nor may a reload bring a token secret (or change one): the player tokens' grants
            // stand on it. A restart decides that.
            let keys = try Self.keys([(.writer, Self.writerB, "b")]).keys
            let secret = try PlayerTokenVerifier(secret: String(repeating: "s", count: 32))
            await #expect(throws: HiscoreServer.ReloadRefusal.self) {
                try await server.replaceAccess(AccessControl(keys: keys, tokens: secret))
            }
            _ = try await writer.submit(board: "b", player: "dave", score: 40)
            try? await revoked.close()
            try? await kept.close()
            try await writer.close()
        }
    }

    @Test("a reloaded certificate serves new connections; open ones keep theirs; bad files keep the one in use")
    func reloadCertificate() async throws {
        try await withPKI { pki in
            try await withServer(configure: { $0.tls = pki.serverTLS() }) { server in
                let oldTrust = ClientTLS(trust: .caFile(pki.path("ca.pem")))
                let newTrust = ClientTLS(trust: .caFile(pki.path("other-ca.pem")))
                let open = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort, tls: oldTrust)
                _ = try await open.submit(board: "b", player: "alice", score: 1)

                for stem in ["pem", "key"] {
                    try FileManager.default.removeItem(atPath: pki.path("server.\(stem)"))
                    try FileManager.default.copyItem(atPath: pki.path("other-server.\(stem)"), toPath: pki.path("server.\(stem)"))
                }
                try server.reloadTLS()
                await expectStatus(.unavailable) {
                    try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort, tls: oldTrust).close()
                }
                let rotated = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort, tls: newTrust)
                _ = try await rotated.submit(board: "b", player: "bob", score: 2)
                _ = try await open.submit(board: "b", player: "alice", score: 3)

                try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: pki.path("server.pem")))
                #expect(throws: TLSSetupError.self) { try server.reloadTLS() }
                let still = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort, tls: newTrust)
                #expect(try await still.top(board: "b", limit: 10).entries.map(\.playerID) == ["alice", "bob"])
                try await still.close()
                try await rotated.close()
                try await open.close()
            }
        }
    }

    @Test("hiscored reads its keys file again on SIGHUP; a bad file keeps the keys in use")
    func sighup() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keysFile = directory.path + "/keys"
        try "writer \(Self.writerA) a\n".write(toFile: keysFile, atomically: true, encoding: .utf8)
        try await withServerProcess(arguments: ["--durability", "memory", "--keys-file", keysFile]) { server in
            let revoked = try await Self.connect(port: server.port, key: Self.writerA)
            _ = try await revoked.submit(board: "b", player: "alice", score: 1)

            try "writer \(Self.writerB) b\n".write(toFile: keysFile, atomically: true, encoding: .utf8)
            server.signal(SIGHUP)
            #expect(await server.waitForLog("1 connections closed"), "\(server.log)")
            await Self.expectRevoked { _ = try await revoked.submit(board: "b", player: "alice", score: 2) }
            let writer = try await Self.connect(port: server.port, key: Self.writerB)
            _ = try await writer.submit(board: "b", player: "bob", score: 2)

            try "writer short\n".write(toFile: keysFile, atomically: true, encoding: .utf8)
            server.signal(SIGHUP)
            #expect(await server.waitForLog("keys not reloaded"), "\(server.log)")
            _ = try await writer.submit(board: "b", player: "bob", score: 3)
            try await Self.connect(port: server.port, key: Self.writerB).close()
            try await writer.close()
            try? await revoked.close()
        }
    }
}
