/// A `String` made from an inline player id's two packed words without validating or copying
/// its bytes.
///
/// Why: a page builds a `String` for every entry's id, and `String(decoding:as:)` checks each
/// one's bytes for UTF-8 before it stores them — 7% of a 50-entry page's server CPU (profiled,
/// two shards, pipeline 16) for ids the server validated when they were written.
///
/// How: on 64-bit little-endian platforms the standard library keeps a string of up to 15 UTF-8
/// bytes inside its own two words — the bytes in order, zero-filled, and in the last byte the
/// count in the low nibble and a discriminator in the high one (0xE: immortal, small, ASCII).
/// `EntryRecord` packs an inline id the same way (its bytes zero-filled, its length in the last
/// byte), so an ASCII id needs only the discriminator. That layout is the standard library's,
/// not public API: `layoutHolds` compares it, once per process, with strings the standard
/// library built itself, and `make` returns nil (the caller decodes the bytes) when it differs,
/// on other platforms, and for ids with a non-ASCII byte.
enum SmallASCIIString {
    /// Bits of the last byte that mark an ASCII small string.
    static let discriminator: UInt64 = 0xE0 << 56

    /// The string of an inline id's packed words (`PackedID.word0`, `.word1`: up to 15 bytes,
    /// zero-filled, the length in `word1`'s top byte), or nil to decode it the checked way: a
    /// byte of 0x80 or more, a byte past the length that is not zero (a small string with one
    /// would print as its bytes but compare unequal to them), a length over 15. The caller has
    /// checked `layoutHolds`.
    @inline(__always)
    static func make(_ word0: UInt64, _ word1: UInt64) -> String? {
        #if _pointerBitWidth(_64) && _endian(little)
            assert(layoutHolds, "SmallASCIIString.make without its layout check")
            let length = word1 >> 56
            let bytes1 = word1 & 0x00FF_FFFF_FFFF_FFFF
            guard length <= 15, (word0 | bytes1) & 0x8080_8080_8080_8080 == 0 else { return nil }
            let past0 = length >= 8 ? 0 : word0 >> (length &* 8)
            let past1 = length <= 8 ? bytes1 : bytes1 >> ((length &- 8) &* 8)
            guard past0 | past1 == 0 else { return nil }
            let string = unsafeBitCast((word0, word1 | discriminator), to: String.self)
            assert(string.utf8.count == Int(word1 >> 56) && string.utf8.allSatisfy { $0 < 0x80 }, "small string layout")
            return string
        #else
            return nil
        #endif
    }

    /// Whether strings of 0 to 15 ASCII bytes built by the standard library have exactly the
    /// words `make` builds.
    static let layoutHolds: Bool = {
        #if _pointerBitWidth(_64) && _endian(little)
            guard MemoryLayout<String>.size == 16 else { return false }
            let sample = Array("Hiscore:p-01234".utf8)
            for count in 0...15 {
                let reference = String(decoding: sample[..<count], as: UTF8.self)
                var words: (UInt64, UInt64) = (0, 0)
                withUnsafeMutableBytes(of: &words) { raw in
                    for index in 0..<count { raw[index] = sample[index] }
                }
                let expected = (words.0, words.1 | UInt64(count) << 56 | discriminator)
                let actual = unsafeBitCast(reference, to: (UInt64, UInt64).self)
                guard actual == expected else { return false }
            }
            return true
        #else
            return false
        #endif
    }()
}
