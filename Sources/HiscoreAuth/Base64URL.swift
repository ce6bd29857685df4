/// Base64url (RFC 4648 §5) as JSON Web Tokens use it: `-` and `_` for `+` and `/`, no padding
/// when encoding; decoding also takes the padded form, and refuses any other character.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 6-bit value of each ASCII byte, 0xFF where it is not in the alphabet.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var text: [UInt8] = []
        text.reserveCapacity((bytes.count * 4 + 2) / 3)
        var bits: UInt32 = 0
        var bitCount = 0
        for byte in bytes {
            bits = bits << 8 | UInt32(byte)
            bitCount += 8
            while bitCount >= 6 {
                bitCount -= 6
                text.append(alphabet[Int(bits >> UInt32(bitCount) & 0x3F)])
            }
        }
        if bitCount > 0 { text.append(alphabet[Int(bits << UInt32(6 - bitCount) & 0x3F)]) }
        return String(decoding: text, as: UTF8.self)
    }

    /// The bytes `text` encodes, or nil unless it is the one canonical base64url spelling of
    /// them (so a token's signature has a single spelling): a character outside the alphabet,
    /// padding anywhere but at the end or other than what completes the last group, a length no
    /// encoding has (4n + 1), or unused low bits that are not zero are refused.
    public static func decode<Text: StringProtocol>(_ text: Text) -> [UInt8]? {
        var characters = Array(text.utf8)[...]
        while characters.last == UInt8(ascii: "=") { characters = characters.dropLast() }
        let padding = text.utf8.count - characters.count
        guard characters.count % 4 != 1, padding == 0 || (characters.count + padding) % 4 == 0 && padding <= 2 else {
            return nil
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count * 3 / 4)
        var bits: UInt32 = 0
        var bitCount = 0
        for character in characters {
            let value = values[Int(character)]
            guard value != 0xFF else { return nil }
            bits = bits << 6 | UInt32(value)
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(bitCount)))
            }
        }
        // The last character's bits past the final byte (2 or 4 of them) must be zero.
        guard bits & (1 << UInt32(bitCount) - 1) == 0 else { return nil }
        return bytes
    }
}
