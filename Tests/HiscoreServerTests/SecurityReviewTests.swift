import Crypto
import Foundation
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreTestSupport
import HiscoreWire
import Testing

private let reviewSecret = "token-secret-0123456789abcdef-0123456789"

private func base64URL(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}

/// A JWT with exactly this payload text, signed (HS256) with `secret`.
private func signedJWT(payload: String, secret: String = reviewSecret) -> String {
    let signingInput = base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + base64URL(Array(payload.utf8))
    let mac = HMAC<Crypto.SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: Array(secret.utf8)))
    return signingInput + "." + base64URL(Array(mac))
}

@Suite("Security review: token expiry past Int64, unusable tokens on large frames")
struct SecurityReviewTests {
    // docs/security.md: "an exp too large to add the leeway to, such as 2^63 − 1, never expires".
    @Test("an exp above Int64.max never expires (it was read as a wrapped value: expired in 1969)",
          arguments: ["9223372036854775807", "9223372036854775808", "18446744073709551615", "1e19"])
    func expAboveInt64(exp: String) throws {
        let verifier = try PlayerTokenVerifier(secret: reviewSecret)
        let now = Int64(Date().timeIntervalSince1970)
        let claims = try verifier.verify(signedJWT(payload: #"{"sub":"p","boards":["*"],"exp":\#(exp)}"#), now: now)
        #expect(claims.expiresAt == .max)
        #expect(!claims.isExpired(at: now, leewaySeconds: PlayerTokenVerifier.leewaySeconds))
    }

    @Test("exp values within Int64 keep their second: past ones expire, fractional ones count from their whole second")
    func expWithinInt64() throws {
        let verifier = try PlayerTokenVerifier(secret: reviewSecret)
        let now = Int64(Date().timeIntervalSince1970)
        let later = try verifier.verify(signedJWT(payload: #"{"sub":"p","exp":\#(now + 3600).75}"#), now: now)
        #expect(later.expiresAt == now + 3600)
        let large = try verifier.verify(signedJWT(payload: #"{"sub":"p","exp":9007199254740993}"#), now: now)
        #expect(large.expiresAt == 9_007_199_254_740_993)  // 2^53 + 1: no double rounding
        #expect(throws: PlayerTokenVerifier.Failure.malformed("exp is not a number (unix seconds)")) {
            _ = try verifier.verify(signedJWT(payload: #"{"sub":"p","exp":"\#(now + 3600)"}"#), now: now)
        }
        #expect(throws: PlayerTokenVerifier.Failure.malformed("missing exp")) {
            _ = try verifier.verify(signedJWT(payload: #"{"sub":"p"}"#), now: now)
        }
        for past in ["1000", "-1e300", "\(now - 3600)"] {
            #expect(throws: PlayerTokenVerifier.Failure.self) {
                _ = try verifier.verify(signedJWT(payload: #"{"sub":"p","exp":\#(past)}"#), now: now)
            }
        }
    }

    // docs/security.md: an invalid token on a large unauthenticated frame "counts as a failed
    // authentication"; 5 in a row close the connection.
    @Test("oversized tokens on large unauthenticated frames count as failed authentications")
    func oversizedTokenInLargeFrameCounts() async throws {
        var keys = APIKeys()
        try keys.add(key: "writer-key-0123456789abcdef", role: .writer, name: "w")
        let access = AccessControl(keys: keys)
        try await withServer(configure: { $0.access = access }) { server in
            let raw = try RawConnection(port: server.localPort)
            _ = raw.handshake()
            for callID in UInt64(1)...8 {
                var request = RequestEnvelope(callID: callID, method: .ping(payload: [UInt8](repeating: 1, count: 20_000)))
                request.authToken = String(repeating: "k", count: 5000)
                raw.send(request)
                guard let answer = raw.readFrame() else { break }
                #expect(answer.status?.code == .unauthenticated)
            }
            #expect(raw.isClosedNow() || raw.waitForClose(), "8 rejected credentials in a row, connection still open")
        }
    }

    @Test("a key configured twice is refused at start-up, within the keys file and across it and HISCORE_API_KEYS")
    func duplicateKeysAreRefused() throws {
        let key = "shared-key-0123456789abcdef"
        #expect(throws: KeyConfigurationError.self) {
            _ = try APIKeys.parse(file: "admin \(key) ops\nreader \(key) site\n", source: "keys")
        }
        var keys = try APIKeys.parse(file: "admin \(key) ops\n", source: "keys")
        let fromEnvironment = try APIKeys.parse(environment: "reader:\(key)")
        #expect(throws: KeyConfigurationError.self) {
            for entry in fromEnvironment.entries { try keys.append(entry) }
        }
        #expect(keys.match(key)?.role == .admin)
        #expect(keys.entries.count == 1)
    }

    @Test("hiscore mint-token refuses a --ttl that would overflow the expiry (it trapped)")
    func mintTokenTTLIsBounded() async throws {
        let huge = try await runCLI(["mint-token", "--secret", reviewSecret, "--player", "p1", "--ttl", "9223372036854775807"])
        #expect(huge.status != 0 && huge.stderr.contains("--ttl"), "mint-token --ttl Int64.max: \(huge.status) \(huge.stderr)")
        let fine = try await runCLI(["mint-token", "--secret", reviewSecret, "--player", "p1", "--ttl", "60"])
        #expect(fine.status == 0 && fine.stdout.split(separator: ".").count == 3)
    }

    @Test("a connection whose player token expired is closed authentication_timeout later unless a fresh credential comes (pings held its slot forever)")
    func expiredTokenLosesItsSlot() async throws {
        let verifier = try PlayerTokenVerifier(secret: reviewSecret)
        var keys = APIKeys()
        try keys.add(key: "reader-key-0123456789abcdef", role: .reader, name: "r")
        let access = AccessControl(keys: keys, tokens: verifier)
        try await withServer(configure: {
            $0.access = access
            $0.limits.authenticationTimeoutSeconds = 1
        }) { server in
            try await offCooperativePool {
                let now = Int64(Date().timeIntervalSince1970)
                // Valid (with the 30 s leeway) for about three more seconds.
                let expiring = verifier.mint(playerID: "me", boards: ["*"], expiresAt: now - PlayerTokenVerifier.leewaySeconds + 3, issuedAt: now - 60)
                let fresh = verifier.mint(playerID: "me", boards: ["*"], expiresAt: now + 3600, issuedAt: now)

                // Pings only, once the token has expired: closed with a notice saying why.
                let stale = try RawConnection(port: server.localPort, timeoutSeconds: 30)
                _ = stale.handshake()
                stale.send(RequestEnvelope(callID: 1, method: .authenticate(token: expiring)))
                #expect(stale.readFrame()?.status == nil, "the token was refused while valid")
                var notice: ResponseEnvelope?
                for call in UInt64(2)...200 {
                    usleep(200_000)  // pacing of the pings, not synchronization
                    stale.send(RequestEnvelope(callID: call, method: .ping(payload: [])))
                    guard let frame = stale.readFrame() else { break }
                    if frame.callID == 0 {
                        notice = frame
                        break
                    }
                }
                #expect(notice?.status?.code == .unauthenticated && notice?.status?.message.contains("expired") == true,
                        "no close notice within 40 s: \(String(describing: notice?.status))")

                // Tokens that expire in a far year (or past Int64 with the leeway) hold the
                // connection: their deadline is not computed into an overflow or a trap.
                for expiresAt in [Int64.max - 40, Int64(40_000_000_000)] {
                    let far = try RawConnection(port: server.localPort, timeoutSeconds: 30)
                    _ = far.handshake()
                    far.send(RequestEnvelope(callID: 1, method: .authenticate(token: verifier.mint(playerID: "me", boards: ["*"], expiresAt: expiresAt, issuedAt: now))))
                    #expect(far.readFrame()?.status == nil)
                    usleep(1_500_000)  // past the 1 s authentication timeout (pacing, not synchronization)
                    far.send(RequestEnvelope(callID: 2, method: .ping(payload: [])))
                    #expect(far.readFrame()?.callID == 2, "a connection with a token valid until \(expiresAt) was closed")
                }

                // The same, but a fresh token follows the expired one: the connection stays.
                let later = Int64(Date().timeIntervalSince1970)
                let expiringToo = verifier.mint(playerID: "me", boards: ["*"], expiresAt: later - PlayerTokenVerifier.leewaySeconds + 2, issuedAt: later - 60)
                let renewed = try RawConnection(port: server.localPort, timeoutSeconds: 30)
                _ = renewed.handshake()
                renewed.send(RequestEnvelope(callID: 1, method: .authenticate(token: expiringToo)))
                #expect(renewed.readFrame()?.status == nil)
                renewed.send(RequestEnvelope(callID: 2, method: .authenticate(token: fresh)))
                #expect(renewed.readFrame()?.status == nil)
                for call in UInt64(3)...27 {
                    usleep(200_000)  // 5 s of pings: past the first token's expiry and the timeout
                    renewed.send(RequestEnvelope(callID: call, method: .ping(payload: [])))
                    #expect(renewed.readFrame()?.callID == call, "a connection with a fresh token was closed")
                }
            }
        }
    }
}
