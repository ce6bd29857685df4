import HiscoreWire
import NIOCore
import NIOSSL

/// Sits right after `NIOSSLClientHandler` and turns TLS failures into one `HiscoreError`
/// (UNAVAILABLE) that says what went wrong; before the server's hello it fails `connect` with it.
final class TLSFailureHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let peer: String
    private let helloPromise: EventLoopPromise<ServerHello>

    init(peer: String, helloPromise: EventLoopPromise<ServerHello>) {
        self.peer = peer
        self.helloPromise = helloPromise
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let explanation = Self.explain(error) else {
            context.fireErrorCaught(error)
            return
        }
        let failure = HiscoreError(.unavailable, "TLS with \(peer): \(explanation)")
        helloPromise.fail(failure)  // no effect once connected
        context.fireErrorCaught(failure)
    }

    /// A readable reason for a TLS error; nil for anything else.
    static func explain(_ error: Error) -> String? {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "the server's certificate is not valid for this host name or address (\(extra))"
        }
        if let nio = error as? NIOSSLError, case .uncleanShutdown = nio {
            return "the server closed the connection without a TLS close_notify"
        }
        guard error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError else { return nil }
        let text = "\(error)"
        let known: [(reason: String, explanation: String)] = [
            ("CERTIFICATE_VERIFY_FAILED",
             "the server's certificate is not trusted: no trusted CA signed it (pass the CA file: ClientTLS(trust: .caFile), hiscore --tls-ca)"),
            ("WRONG_VERSION_NUMBER", "the server did not answer with TLS; is it started with --tls-cert?"),
            ("CERTIFICATE_REQUIRED", "the server requires a client certificate (ClientTLS certificateChainPath/privateKeyPath)"),
            ("UNKNOWN_CA", "the server does not trust the client certificate's CA"),
            ("BAD_CERTIFICATE", "the server refused the client certificate"),
        ]
        for (reason, explanation) in known where text.contains(reason) {
            return "\(explanation) [\(reason)]"
        }
        return "handshake failed: \(text)"
    }
}
