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

    /// `localhost`, `::1`, or an IPv4 literal in 127.0.0.0/8. Names are not resolved: a name that
    /// merely starts with "127." (`127.example.com`) can point anywhere.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && UInt8($0) != nil }
    }
}
