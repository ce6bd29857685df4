import HiscoreAuth

/// Like Redis's protected mode: a server with no API keys answers anyone who can reach it, so it
/// may only listen on loopback. Any other address without keys refuses to start, saying how to fix
/// it.
public enum ProtectedMode {
    public struct Refusal: Error, CustomStringConvertible {
        public let host: String
        public var description: String {
            """
            refusing to listen on \(host) without API keys (protected mode): anyone who can reach \
            it could write scores. Configure keys with --keys-file FILE (lines 'ROLE KEY [NAME]', ROLE \
            admin, writer or reader) or HISCORE_API_KEYS=ROLE:KEY,..., and optionally --token-secret for \
            player tokens; or listen on 127.0.0.1. See docs/security.md.
            """
        }
    }

    public static func check(host: String, access: AccessControl) throws(Refusal) {
        guard access.isOpen, !isLoopback(host) else { return }
        throw Refusal(host: host)
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
