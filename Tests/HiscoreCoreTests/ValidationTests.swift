import Testing
import HiscoreCore

@Suite("Identifier and config validation")
struct ValidationTests {
    @Test("valid identifiers", arguments: ["a", "p:000000000042", "Board_1.season-2:eu", String(repeating: "x", count: 128)])
    func valid(id: String) throws {
        try Identifier.validate(id, field: "player_id")
    }

    @Test("too long")
    func tooLong() {
        #expect(throws: ValidationError(field: "player_id", reason: "200 bytes, at most 128 allowed")) {
            try Identifier.validate(String(repeating: "a", count: 200), field: "player_id")
        }
        let error = ValidationError(field: "player_id", reason: "200 bytes, at most 128 allowed")
        #expect(error.description == "player_id: 200 bytes, at most 128 allowed")
    }

    @Test("empty")
    func empty() {
        #expect(throws: ValidationError.self) { try Identifier.validate("", field: "board_id") }
    }

    @Test("forbidden bytes", arguments: ["a b", "a/b", "é", "a\u{0}", "tab\t", "x#", "emoji🎮"])
    func forbidden(id: String) {
        do {
            try Identifier.validate(id, field: "player_id")
            Issue.record("\(id) accepted")
        } catch {
            #expect(error.field == "player_id")
            #expect(error.reason.contains("not allowed"))
        }
    }

    @Test("every ASCII byte is accepted exactly when it is in A-Z a-z 0-9 _ . : -, at any position")
    func everyASCIIByte() {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-".utf8)
        for byte in UInt8(0)...UInt8(127) {
            let character = String(UnicodeScalar(byte))
            for id in [character, "ab" + character, character + "cd", String(repeating: "x", count: 40) + character] {
                let accepted = (try? Identifier.validate(id, field: "player_id")) != nil
                #expect(accepted == allowed.contains(byte), "byte \(byte) in \(id.debugDescription)")
            }
        }
    }

    /// The fast check accepts and refuses (`everyASCIIByte`); the message of a refusal comes from
    /// the byte-by-byte check, which must agree with it: it names the first forbidden byte, at its
    /// offset, after any run of allowed ones. (A mutant dropping '-' from that check passed every
    /// other test: the refusal was right, its message named the '-'.)
    @Test("a refused identifier's message names its first forbidden byte and offset, past every allowed byte")
    func firstForbiddenByteNamed() {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-".utf8)
        let rest = " (allowed: A-Z a-z 0-9 _ . : -)"
        for byte in allowed {
            let id = String(decoding: [byte, byte, UInt8(ascii: "#"), byte], as: UTF8.self)
            #expect(throws: ValidationError(field: "player_id", reason: "'#' at offset 2 is not allowed" + rest), "\(id)") {
                try Identifier.validate(id, field: "player_id")
            }
        }
        for byte in UInt8(0)...UInt8(127) where !allowed.contains(byte) {
            let shown = byte >= 0x20 && byte < 0x7f ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
            let id = String(decoding: [UInt8(ascii: "a"), UInt8(ascii: "-"), byte, UInt8(ascii: "#")], as: UTF8.self)
            #expect(throws: ValidationError(field: "player_id", reason: "\(shown) at offset 2 is not allowed" + rest), "byte \(byte)") {
                try Identifier.validate(id, field: "player_id")
            }
        }
        #expect(throws: ValidationError(field: "player_id", reason: "byte 0xc3 at offset 3 is not allowed" + rest)) {
            try Identifier.validate("a:-é", field: "player_id")
        }
    }

    @Test("multi-byte characters count in bytes")
    func bytesNotCharacters() {
        // 43 three-byte characters = 129 bytes.
        #expect(throws: ValidationError.self) {
            try Identifier.validate(String(repeating: "€", count: 43), field: "player_id")
        }
    }

    @Test("default config")
    func defaultConfig() throws {
        let config = BoardConfig.defaultConfig(id: "weekly")
        #expect(config.scoreOrder == .descending)
        #expect(config.subscoreOrder == .descending)
        #expect(config.writeOperator == .best)
        #expect(config.rankMode == .ordinal)
        #expect(config.limits == BoardLimits(maxEntries: 0, maxMetadataBytes: 256))
        try config.validate()
    }

    @Test("config limits")
    func limits() throws {
        var config = BoardConfig.defaultConfig(id: "b")
        config.limits.maxMetadataBytes = 4096
        try config.validate()
        config.limits.maxMetadataBytes = 4097
        #expect(throws: ValidationError.self) { try config.validate() }
        config.limits.maxMetadataBytes = -1
        #expect(throws: ValidationError.self) { try config.validate() }
        config.limits.maxMetadataBytes = 0
        config.limits.maxEntries = -5
        #expect(throws: ValidationError.self) { try config.validate() }
        config.limits.maxEntries = 10
        try config.validate()
        config.id = "bad id"
        #expect(throws: ValidationError.self) { try config.validate() }
    }
}
