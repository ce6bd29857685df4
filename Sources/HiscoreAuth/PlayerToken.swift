import HiscoreCore

/// Player tokens are JSON Web Tokens signed with HMAC-SHA256 (RFC 7519, "HS256"), so a game
/// server in any language mints them with a stock JWT library and the shared secret:
///
///     header  {"alg":"HS256","typ":"JWT"}
///     payload {"sub":"<player id>","boards":["weekly","daily"],"exp":<unix seconds>,"iat":<unix seconds>}
///
/// `boards` lists what the player may read and subscribe to (["*"] = every board); `exp` is
/// required. Only HS256 is accepted (never "none"), the signature is checked in constant time
/// before the payload is parsed, and tokens are at most `maxBytes` long.
public struct PlayerTokenVerifier: Sendable {
    public static let maxBytes = 4096
    /// Clock skew tolerated on `exp`.
    public static let leewaySeconds: Int64 = 30

    private let secret: [UInt8]

    public init(secret: String) throws(KeyConfigurationError) {
        guard secret.utf8.count >= 32 else {
            throw .invalid("the token secret must be at least 32 bytes (UTF-8; HS256 needs 256 bits of key)")
        }
        self.secret = Array(secret.utf8)
    }

    /// Whether `other` verifies with the same secret (a reload of the keys keeps the tokens'
    /// secret: see `HiscoreServer.replaceAccess`).
    public func hasSameSecret(as other: PlayerTokenVerifier) -> Bool { secret == other.secret }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)
        case badSignature
        case expired(at: Int64)

        public var description: String {
            switch self {
            case .malformed(let why): "malformed player token: \(why)"
            case .badSignature: "player token signature is invalid"
            case .expired(let at): "player token expired at \(at) (unix seconds)"
            }
        }
    }

    public func verify(_ token: String, now: Int64) throws(Failure) -> PlayerClaims {
        guard token.utf8.count <= Self.maxBytes else { throw .malformed("longer than \(Self.maxBytes) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected header.payload.signature") }
        guard let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw .malformed("not base64url") }
        guard let header = JSONValue.parse(headerBytes), header["alg"] == .string("HS256") else {
            throw .malformed("only alg HS256 is accepted")
        }
        let signedPart = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        guard HMACSHA256.isValid(signature, for: signedPart, key: secret) else {
            throw .badSignature
        }
        guard let payload = JSONValue.parse(payloadBytes), case .object = payload else {
            throw .malformed("payload is not a JSON object")
        }
        guard let subject = payload["sub"]?.string, !subject.isEmpty else { throw .malformed("missing sub (player id)") }
        // A player id as submits and reads name it (ASCII, bounded): the token's own-player
        // check then compares exactly the bytes a request sends.
        do throws(ValidationError) { try Identifier.validate(subject, field: "sub") } catch {
            throw .malformed("sub is not a valid player id: \(error)")
        }
        guard let expValue = payload["exp"] else { throw .malformed("missing exp") }
        guard case .number(let exp) = expValue else { throw .malformed("exp is not a number (unix seconds)") }
        let expiry = try Self.expirySeconds(exp)
        var boards: Set<String>? = []
        if let listed = payload["boards"] {
            guard case .array(let values) = listed else { throw .malformed("boards must be a list of board ids") }
            let list = values.compactMap(\.string)
            guard list.count == values.count else { throw .malformed("boards must be a list of board ids") }
            boards = list.contains("*") ? nil : Set(list)
        }
        let claims = PlayerClaims(playerID: subject, boards: boards, expiresAt: expiry)
        guard !claims.isExpired(at: now, leewaySeconds: Self.leewaySeconds) else { throw .expired(at: expiry) }
        return claims
    }

    /// `exp` (a JSON number's text) as whole unix seconds. Numbers past Int64 (a library's
    /// "never", 2^64 − 1 or 1e19) are the far future, not a wrapped negative (read as 1969, they
    /// expired every such token). An integer is read exactly, past 2^53 too; a fractional or
    /// exponent NumericDate counts from its whole second.
    static func expirySeconds(_ exp: String) throws(Failure) -> Int64 {
        let isInteger = !exp.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
        if isInteger {
            if let exact = Int64(exp) { return exact }
            return exp.hasPrefix("-") ? .min : .max  // all digits, past Int64's range
        }
        guard let seconds = Double(exp), seconds.isFinite else { throw .malformed("exp is not a finite number") }
        if seconds >= 0x1p63 { return .max }
        if seconds < -0x1p63 { return .min }
        return Int64(seconds.rounded(.down))
    }

    /// Mints a token (for `hiscore mint-token`, tests, and game servers written in Swift).
    public func mint(playerID: String, boards: [String], expiresAt: Int64, issuedAt: Int64) -> String {
        let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        // Keys in sorted order, as a canonical encoder writes them.
        let payloadJSON = "{\"boards\":[" + boards.map(JSONValue.quoted).joined(separator: ",") + "],\"exp\":\(expiresAt),"
            + "\"iat\":\(issuedAt),\"sub\":" + JSONValue.quoted(playerID) + "}"
        let payload = Base64URL.encode(Array(payloadJSON.utf8))
        let signature = HMACSHA256.code(for: Array((header + "." + payload).utf8), key: secret)
        return header + "." + payload + "." + Base64URL.encode(signature)
    }
}
