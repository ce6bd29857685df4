import Crypto
import Foundation
import HiscoreAuth
import HiscoreTestSupport
import Testing

/// The primitives player tokens and API keys stand on (HiscoreAuth's own SHA-256, HMAC,
/// base64url and JSON reader), checked against published vectors and against swift-crypto and
/// Foundation on random inputs.
@Suite("Token primitives: SHA-256, HMAC-SHA256, base64url, JSON")
struct TokenPrimitivesTests {
    private static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    private static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }

    @Test("SHA-256: the FIPS 180-4 examples, and the padding boundaries")
    func sha256Vectors() {
        #expect(Self.hex(HiscoreAuth.SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex(HiscoreAuth.SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Self.hex(HiscoreAuth.SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            Self.hex(HiscoreAuth.SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // 55, 56, 63, 64 and 65 bytes: the length field fits the last block, or needs another.
        for count in [55, 56, 63, 64, 65, 119, 120, 128] {
            let message = [UInt8](repeating: 0x61, count: count)
            #expect(HiscoreAuth.SHA256.hash(message) == Array(Crypto.SHA256.hash(data: message)), "\(count) bytes")
        }
    }

    @Test("HMAC-SHA256: RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (a key longer than a block is hashed)")
    func hmacVectors() {
        let cases: [(key: [UInt8], data: [UInt8], code: String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (Self.bytes(hex: "0102030405060708090a0b0c0d0e0f10111213141516171819"), [UInt8](repeating: 0xcd, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ([UInt8](repeating: 0xaa, count: 131),
             Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (key, data, code) in cases {
            #expect(Self.hex(HMACSHA256.code(for: data, key: key)) == code)
            #expect(HMACSHA256.isValid(Self.bytes(hex: code), for: data, key: key))
            var wrong = Self.bytes(hex: code)
            wrong[31] ^= 1
            #expect(!HMACSHA256.isValid(wrong, for: data, key: key))
            #expect(!HMACSHA256.isValid(Array(wrong.prefix(16)), for: data, key: key))
        }
    }

    @Test("SHA-256, HMAC and base64url agree with swift-crypto and Foundation on random inputs", arguments: testSeeds([7, 8]))
    func randomAgreement(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for round in 0..<300 {
            let message = (0..<random.below(300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let key = (0..<random.below(200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let context = "seed \(seed) round \(round): \(message.count)-byte message, \(key.count)-byte key"
            #expect(HiscoreAuth.SHA256.hash(message) == Array(Crypto.SHA256.hash(data: message)), "\(context)")
            let reference = HMAC<Crypto.SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
            #expect(HMACSHA256.code(for: message, key: key) == Array(reference), "\(context)")
            let base64 = Data(message).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(message) == base64, "\(context)")
            #expect(Base64URL.decode(base64) == message, "\(context)")
        }
    }

    @Test("base64url: padding is optional at the end only; other characters and impossible lengths are refused")
    func base64URLEdges() {
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.decode("YQ") == Array("a".utf8))
        #expect(Base64URL.decode("YQ==") == Array("a".utf8))
        #expect(Base64URL.decode("_-8") == [0xff, 0xef])
        #expect(Base64URL.decode("YWI=") == Array("ab".utf8))
        // Unused low bits set ("YR" would read as "a" too), padding that does not complete the
        // last group, and padding alone: each has another spelling, or none.
        for bad in ["Y", "YQ=a", "YQ===", "Y+Q", "Y/Q", "YQ\n", "Y Q", "Ã©", "YQ=="+"=", "YR", "YWJ", "YQ=", "=", "==", "YWI=="] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
    }

    @Test("JSON reader: what tokens hold, escapes and surrogate pairs, numbers kept as text")
    func jsonValues() {
        let text = #" {"sub":"p\u00e9\ud83c\udfae\n\"\/","boards":["a","*"],"exp":9007199254740993,"f":-1.5e3,"t":true,"n":null,"o":{}} "#
        let value = JSONValue.parse(Array(text.utf8))
        #expect(value?["sub"] == .string("pé🎮\n\"/"))
        #expect(value?["boards"] == .array([.string("a"), .string("*")]))
        #expect(value?["exp"] == .number("9007199254740993"))
        #expect(value?["f"] == .number("-1.5e3"))
        #expect(value?["t"] == .bool(true))
        #expect(value?["n"] == .null)
        #expect(value?["o"] == .object([:]))
        #expect(JSONValue.parse(Array(#"{"a":1,"a":2}"#.utf8))?["a"] == .number("2"), "the last of a repeated key")
    }

    @Test("JSON reader refuses malformed text, invalid UTF-8, lone surrogates and deep nesting")
    func jsonRefusals() {
        let bad = [
            "", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul",
            "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud83c\"", "\"\\udfae\"", "\"\\ud83c\\u0041\"", "\"a\u{01}b\"", "{} {}", "NaN",
            "{'a':1}",
        ]
        for text in bad { #expect(JSONValue.parse(Array(text.utf8)) == nil, "\(text)") }
        #expect(JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) == nil, "invalid UTF-8 in a string")
        #expect(JSONValue.parse([0x22, 0xFF, 0x22]) == nil, "invalid UTF-8 in a string")
        let deep = String(repeating: "[", count: JSONValue.maxDepth + 2) + String(repeating: "]", count: JSONValue.maxDepth + 2)
        #expect(JSONValue.parse(Array(deep.utf8)) == nil)
        let allowed = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(JSONValue.parse(Array(allowed.utf8)) != nil)
    }

    @Test("JSON reader agrees with Foundation on which random documents are valid (but for its trailing commas); strings round-trip", arguments: testSeeds([11]))
    func jsonAgreement(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let pieces = ["{", "}", "[", "]", ",", ":", "\"a\"", "\"\\u00e9\"", "1", "-0.5", "2e3", "true", "null", " ", "\"", "\\"]
        for round in 0..<2000 {
            let text = (0..<random.below(12)).map { _ in pieces[random.below(pieces.count)] }.joined()
            let ours = JSONValue.parse(Array(text.utf8))
            let reference = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            // Foundation also takes a comma before a closing bracket, which RFC 8259 does not.
            let squeezed = text.replacingOccurrences(of: " ", with: "")
            if reference != nil && ours == nil && (squeezed.contains(",]") || squeezed.contains(",}")) { continue }
            #expect((ours != nil) == (reference != nil), "seed \(seed) round \(round): \(text)")
        }
        // Round trip of strings through the writer and the reader.
        for round in 0..<300 {
            let scalars = (0..<random.below(20)).compactMap { _ in
                Unicode.Scalar(UInt32([0x00, 0x1F, 0x22, 0x5C, 0x41, 0xE9, 0x2028, 0x1F3AE][random.below(8)]))
            }
            let text = String(String.UnicodeScalarView(scalars))
            #expect(JSONValue.parse(Array(JSONValue.quoted(text).utf8)) == .string(text), "seed \(seed) round \(round)")
        }
    }

    @Test("a minted token verifies, carries its claims, and its payload is what JSONSerialization reads")
    func mintedTokens() throws {
        let verifier = try PlayerTokenVerifier(secret: "mint-secret-0123456789abcdef-0123456789")
        let token = verifier.mint(playerID: "p:1", boards: ["weekly", "da\"ily"], expiresAt: 4_000_000_000, issuedAt: 1_700_000_000)
        let claims = try verifier.verify(token, now: 1_700_000_000)
        #expect(claims.playerID == "p:1" && claims.boards == ["weekly", "da\"ily"] && claims.expiresAt == 4_000_000_000)
        let payload = try #require(Base64URL.decode(token.split(separator: ".")[1]))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        #expect(object["sub"] as? String == "p:1" && object["exp"] as? Int == 4_000_000_000 && object["iat"] as? Int == 1_700_000_000)
        #expect(object["boards"] as? [String] == ["weekly", "da\"ily"])
    }
}
