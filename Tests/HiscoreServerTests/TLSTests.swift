import Foundation
import HiscoreClient
import HiscoreServer
import HiscoreTestSupport
import Testing

/// TLS on the client port: certificates made with the `openssl` CLI at test time (see `TestPKI`).
@Suite("TLS")
struct TLSTests {
    @Test("a TLS client submits and queries, by IP address and by host name")
    func submitAndQuery() async throws {
        try await withPKI { pki in
            try await withServer(configure: { $0.tls = pki.serverTLS() }) { server in
                let tls = ClientTLS(trust: .caFile(pki.path("ca.pem")))
                let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort, tls: tls)
                let result = try await client.submit(board: "tls", player: "alice", score: 42)
                #expect(result.entry.rank == 1)
                try await client.close()

                let byName = try await HiscoreClient.connect(host: "localhost", port: server.localPort, tls: tls)
                _ = try await byName.submit(board: "tls", player: "bob", score: 50)
                let top = try await byName.top(board: "tls", limit: 10)
                #expect(top.entries.map(\.playerID) == ["bob", "alice"])
                try await byName.close()
            }
        }
    }

    @Test("a plain-TCP client gets no service and the server keeps serving")
    func plainClientRefused() async throws {
        try await withPKI { pki in
            try await withServer(configure: { $0.tls = pki.serverTLS() }) { server in
                let raw = try RawConnection(port: server.localPort)
                #expect(raw.handshake() == nil, "a plain preface must not get a hello")
                #expect(raw.waitForClose())

                // The server's TLS alert, read as a frame header, is named for what it is.
                let message = await expectStatus(.unavailable) {
                    let plain = try await HiscoreClient.connect(
                        host: "127.0.0.1", port: server.localPort, connectTimeout: .seconds(5))
                    try? await plain.close()
                }
                #expect(message.contains("that is a TLS record") && message.contains("--tls-ca"), "\(message)")

                let client = try await HiscoreClient.connect(
                    host: "127.0.0.1", port: server.localPort, tls: ClientTLS(trust: .caFile(pki.path("ca.pem"))))
                _ = try await client.submit(board: "tls", player: "alice", score: 1)
                try await client.close()
            }
        }
    }

    @Test("a client that does not trust the server's CA fails with a clear error")
    func untrustedServer() async throws {
        try await withPKI { pki in
            try await withServer(configure: { $0.tls = pki.serverTLS() }) { server in
                let message = await expectStatus(.unavailable) {
                    let client = try await HiscoreClient.connect(
                        host: "127.0.0.1", port: server.localPort, tls: ClientTLS(trust: .caFile(pki.path("other-ca.pem"))))
                    try? await client.close()
                }
                #expect(message.contains("not trusted"), "\(message)")
            }
        }
    }

    @Test("the server's certificate must name the host: by default the address, else serverName")
    func serverName() async throws {
        try await withPKI { pki in
            let dnsOnly = ServerTLS(certificateChainPath: pki.path("dns-only.pem"), privateKeyPath: pki.path("dns-only.key"))
            try await withServer(configure: { $0.tls = dnsOnly }) { server in
                let trust = ClientTLS.Trust.caFile(pki.path("ca.pem"))
                let message = await expectStatus(.unavailable) {
                    let client = try await HiscoreClient.connect(
                        host: "127.0.0.1", port: server.localPort, tls: ClientTLS(trust: trust))
                    try? await client.close()
                }
                #expect(message.contains("host name"), "\(message)")

                let client = try await HiscoreClient.connect(
                    host: "127.0.0.1", port: server.localPort, tls: ClientTLS(trust: trust, serverName: "scores.example.com"))
                _ = try await client.submit(board: "tls", player: "alice", score: 1)
                try await client.close()
            }
        }
    }

    @Test("a TLS client against a plain server fails with a clear error")
    func tlsClientPlainServer() async throws {
        try await withPKI { pki in
            try await withServer { server in
                let message = await expectStatus(.unavailable) {
                    let client = try await HiscoreClient.connect(
                        host: "127.0.0.1", port: server.localPort, connectTimeout: .seconds(5),
                        tls: ClientTLS(trust: .caFile(pki.path("ca.pem"))))
                    try? await client.close()
                }
                #expect(message.contains("TLS"), "\(message)")
            }
        }
    }

    @Test("with a client CA, only clients with a certificate it issued are served")
    func mutualTLS() async throws {
        try await withPKI { pki in
            try await withServer(configure: { $0.tls = pki.serverTLS(clientCA: "ca.pem") }) { server in
                let trust = ClientTLS.Trust.caFile(pki.path("ca.pem"))
                await expectStatus(.unavailable) {
                    let client = try await HiscoreClient.connect(
                        host: "127.0.0.1", port: server.localPort, tls: ClientTLS(trust: trust))
                    _ = try await client.submit(board: "mtls", player: "anonymous", score: 1)
                    try? await client.close()
                }
                await expectStatus(.unavailable) {
                    let client = try await HiscoreClient.connect(
                        host: "127.0.0.1", port: server.localPort,
                        tls: ClientTLS(
                            trust: trust, certificateChainPath: pki.path("other-client.pem"),
                            privateKeyPath: pki.path("other-client.key")))
                    _ = try await client.submit(board: "mtls", player: "stranger", score: 1)
                    try? await client.close()
                }

                let client = try await HiscoreClient.connect(
                    host: "127.0.0.1", port: server.localPort,
                    tls: ClientTLS(
                        trust: trust, certificateChainPath: pki.path("client.pem"), privateKeyPath: pki.path("client.key")))
                let result = try await client.submit(board: "mtls", player: "alice", score: 7)
                #expect(result.entry.rank == 1)
                try await client.close()
            }
        }
    }

    @Test("unusable certificate or key files stop the start with an error naming the file")
    func badFiles() async throws {
        try await withPKI { pki in
            let cases: [(ServerTLS, String)] = [
                (ServerTLS(certificateChainPath: pki.path("missing.pem"), privateKeyPath: pki.path("server.key")), "missing.pem"),
                (ServerTLS(certificateChainPath: pki.path("server.key"), privateKeyPath: pki.path("server.key")), "server.key"),
                (ServerTLS(certificateChainPath: pki.path("server.pem"), privateKeyPath: pki.path("server.pem")), "server.pem"),
                (ServerTLS(certificateChainPath: pki.path("server.pem"), privateKeyPath: pki.path("client.key")), "client.key"),
                (
                    ServerTLS(
                        certificateChainPath: pki.path("server.pem"), privateKeyPath: pki.path("server.key"),
                        clientCAPath: pki.path("nope.pem")), "nope.pem"
                ),
            ]
            for (tls, file) in cases {
                do {
                    _ = try await withServer(configure: { $0.tls = tls }) { _ in
                        Issue.record("the server started with \(tls)")
                    }
                } catch let error as TLSSetupError {
                    #expect(error.file.hasSuffix(file), "\(error)")
                    #expect(error.description.contains(file))
                }
            }
        }
    }

    @Test("unusable client-side files fail connect before any connection is made")
    func badClientFiles() async throws {
        try await withPKI { pki in
            let message = await expectStatus(.invalidArgument) {
                _ = try await HiscoreClient.connect(
                    host: "127.0.0.1", port: 1, tls: ClientTLS(trust: .caFile(pki.path("missing-ca.pem"))))
            }
            #expect(message.contains("missing-ca.pem"), "\(message)")
        }
    }
}

/// Runs `body` with a fresh `TestPKI` (made off the cooperative pool: it waits for `openssl`
/// runs) and always removes its directory.
func withPKI(_ body: (TestPKI) async throws -> Void) async throws {
    let pki = try await offCooperativePool { try TestPKI.make() }
    defer { try? FileManager.default.removeItem(at: pki.directory) }
    try await body(pki)
}

/// A throwaway PKI made with the `openssl` CLI (Debian package `openssl`) in a temporary directory:
/// ca.pem signed server.pem (localhost, 127.0.0.1), dns-only.pem (scores.example.com) and
/// client.pem; other-ca.pem signed
/// other-client.pem and other-server.pem (localhost, 127.0.0.1: a certificate to rotate to). EC P-256 keys, unencrypted PKCS#8 PEM, valid for two days.
struct TestPKI {
    let directory: URL

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func serverTLS(clientCA: String? = nil) -> ServerTLS {
        ServerTLS(
            certificateChainPath: path("server.pem"), privateKeyPath: path("server.key"), clientCAPath: clientCA.map(path))
    }

    static func make() throws -> TestPKI {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pki = TestPKI(directory: directory)
        do {
            try pki.makeCA("ca", name: "Hiscore Test CA")
            try pki.makeCA("other-ca", name: "Some Other CA")
            try pki.makeLeaf(
                "server", name: "localhost", ca: "ca",
                extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
            try pki.makeLeaf(
                "dns-only", name: "scores.example.com", ca: "ca",
                extensions: "subjectAltName=DNS:scores.example.com\nextendedKeyUsage=serverAuth\n")
            try pki.makeLeaf("client", name: "test client", ca: "ca", extensions: "extendedKeyUsage=clientAuth\n")
            try pki.makeLeaf("other-client", name: "stranger", ca: "other-ca", extensions: "extendedKeyUsage=clientAuth\n")
            try pki.makeLeaf(
                "other-server", name: "localhost", ca: "other-ca",
                extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        return pki
    }

    private func makeCA(_ stem: String, name: String) throws {
        try openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("\(stem).key"), "-out", path("\(stem).pem"), "-days", "2", "-subj", "/CN=\(name)",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    }

    private func makeLeaf(_ stem: String, name: String, ca: String, extensions: String) throws {
        try openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("\(stem).key"), "-out", path("\(stem).csr"), "-subj", "/CN=\(name)")
        try Data((extensions + "basicConstraints=CA:FALSE\n").utf8).write(to: URL(fileURLWithPath: path("\(stem).ext")))
        try openssl(
            "x509", "-req", "-in", path("\(stem).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
            "-CAcreateserial", "-out", path("\(stem).pem"), "-days", "2", "-extfile", path("\(stem).ext"))
    }

    private func openssl(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = directory
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw TestPKIError("cannot run openssl (Debian package openssl): \(error)")
        }
        let log = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestPKIError(
                "openssl \(arguments.joined(separator: " ")) exited \(process.terminationStatus) (is the Debian package openssl installed?): \(String(decoding: log, as: UTF8.self))")
        }
    }
}

struct TestPKIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
