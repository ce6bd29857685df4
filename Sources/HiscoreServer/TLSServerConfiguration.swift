import NIOSSL

/// TLS on the client port. The files are PEM and are read once, when the server starts. The admin
/// HTTP port (/metrics, /healthz, /readyz) stays plain: keep it on loopback.
public struct ServerTLS: Sendable, Equatable {
    /// The server's certificate first, then any intermediates.
    public var certificateChainPath: String
    public var privateKeyPath: String
    /// Set: every client must present a certificate issued by one of the CAs in this file
    /// (mutual TLS); a client without one is refused during the handshake.
    public var clientCAPath: String?

    public init(certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
    }

    /// Loads the files and builds the context shared by every connection: TLS 1.2 or later.
    /// Blocking file I/O: call it off the event loops.
    func makeContext() throws -> NIOSSLContext {
        let chain = try Self.certificates(at: certificateChainPath, kind: "certificate")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
        } catch {
            throw TLSSetupError.unusable(
                privateKeyPath, kind: "private key", parseProblem: "not an unencrypted PEM private key (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        if let clientCAPath {
            tls.trustRoots = .certificates(try Self.certificates(at: clientCAPath, kind: "client CA"))
            tls.certificateVerification = .noHostnameVerification
            tls.sendCANameList = true
        }
        tls.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TLSSetupError(
                file: privateKeyPath, problem: "does not go with the certificate in \(certificateChainPath) (\(error))")
        }
    }

    private static func certificates(at path: String, kind: String) throws -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TLSSetupError.unusable(path, kind: kind, parseProblem: "not a PEM \(kind) file (\(error))")
        }
        guard !certificates.isEmpty else {
            throw TLSSetupError(file: path, problem: "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
        }
        return certificates
    }
}
