import HiscoreWire
import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TLS for a client connection (`HiscoreClient.connect(..., tls:)`). Files are PEM.
///
///     let tls = ClientTLS(trust: .caFile("ca.pem"))
///     let client = try await HiscoreClient.connect(host: "scores.example.com", port: 7450, tls: tls)
public struct ClientTLS: Sendable, Equatable {
    /// Which certificate authorities the server's certificate must chain to.
    public enum Trust: Sendable, Equatable {
        /// The system's trust store (/etc/ssl/certs on Debian).
        case systemDefault
        /// Only the CA certificates in this PEM file (a private CA, a self-signed server).
        case caFile(String)
    }

    public var trust: Trust
    /// The client's certificate chain and key, for servers that require client certificates.
    public var certificateChainPath: String?
    public var privateKeyPath: String?
    /// The name sent in SNI and matched against the server's certificate. nil = the host passed to
    /// `connect` (nothing when that is an IP address). The certificate must list this name or the
    /// IP address connected to.
    public var serverName: String?

    public init(
        trust: Trust = .systemDefault, certificateChainPath: String? = nil, privateKeyPath: String? = nil,
        serverName: String? = nil
    ) {
        self.trust = trust
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.serverName = serverName
    }

    /// Loads the files: TLS 1.2 or later, the server's certificate and name always verified.
    /// Blocking file I/O (and the system trust store); call it off the event loops.
    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if case .caFile(let path) = trust {
            configuration.trustRoots = .certificates(try Self.certificates(at: path, kind: "CA"))
        }
        switch (certificateChainPath, privateKeyPath) {
        case (nil, nil):
            break
        case (let chainPath?, let keyPath?):
            configuration.certificateChain = try Self.certificates(at: chainPath, kind: "certificate").map { .certificate($0) }
            configuration.privateKey = .privateKey(try Self.privateKey(at: keyPath))
        default:
            throw HiscoreError(.invalidArgument, "TLS: a client certificate needs both its chain and its private key")
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw HiscoreError(.invalidArgument, "TLS: cannot set up the client context: \(error)")
        }
    }

    /// The handler that goes first in the pipeline of a connection to `host`.
    func makeHandler(context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: serverName ?? (isIPAddress ? nil : host))
    }

    private static func certificates(at path: String, kind: String) throws -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw unusable(path, kind: kind, parseProblem: "not a PEM \(kind) file (\(error))")
        }
        guard !certificates.isEmpty else {
            throw HiscoreError(.invalidArgument, "TLS: \(path): no PEM certificate in it")
        }
        return certificates
    }

    private static func privateKey(at path: String) throws -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw unusable(path, kind: "private key", parseProblem: "not an unencrypted PEM private key (\(error))")
        }
    }

    private static func unusable(_ path: String, kind: String, parseProblem: String) -> HiscoreError {
        if access(path, R_OK) != 0 {
            return HiscoreError(.invalidArgument, "TLS: \(path): cannot read the \(kind) file: \(String(cString: strerror(errno)))")
        }
        return HiscoreError(.invalidArgument, "TLS: \(path): \(parseProblem)")
    }
}
