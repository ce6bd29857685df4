import Testing

@testable import HiscoreCore
import HiscoreTestSupport

/// Player ids come back out of a partition exactly as they went in, whichever way they are
/// stored (inline up to 15 bytes, or in a blob) and however their `String` is rebuilt.
@Suite("Player id storage")
struct PlayerIDStorageTests {
    @Test("the standard library's small-string layout is the one inline ids are read with here")
    func layout() {
        // If this fails the server is still correct (ids are decoded the checked way), only slower.
        #expect(SmallASCIIString.layoutHolds)
    }

    @Test("ids of every length, ASCII or not, read back equal, hash equal and compare equal")
    func roundTrip() throws {
        let seed = testSeeds([20261130])[0]
        var random = SplitMix64(seed: seed)
        let ascii = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-".utf8)
        let partition = BoardPartition(config: BoardConfig(id: "ids"))
        var written: [String: Int64] = [:]
        for round in 0..<600 {
            let length = 1 + round % 40
            var bytes = (0..<length).map { _ in ascii[random.below(ascii.count)] }
            if random.chance(20) { bytes[random.below(length)] = 0x7F }  // DEL: ASCII, not an identifier byte
            var id = String(decoding: bytes, as: UTF8.self)
            if random.chance(15) { id = String(id.dropLast(min(id.count, 2))) + "é" }  // a two-byte character
            guard !id.isEmpty, written[id] == nil else { continue }
            let score = Int64(round)
            _ = try partition.write(playerID: id, score: score, subscore: 0, metadata: nil, sequence: UInt64(round + 1))
            written[id] = score
        }
        let all = partition.entries(fromRank: 0, limit: partition.count)
        #expect(all.count == written.count, "seed \(seed)")
        for entry in all {
            #expect(written[entry.playerID] == entry.score, "seed \(seed): \(entry.playerID) read back as another id")
            #expect(Array(entry.playerID.utf8) == Array(written.keys.first { $0 == entry.playerID }?.utf8 ?? "".utf8))
            #expect(partition.entry(for: entry.playerID)?.playerID == entry.playerID)
            #expect(entry.playerID.hashValue == String(decoding: Array(entry.playerID.utf8), as: UTF8.self).hashValue)
        }
    }

    @Test("the strings made from packed words are bit for bit the standard library's")
    func sameBits() {
        let sample = Array("Hiscore:p-01234".utf8)
        for count in 0...15 {
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                for index in 0..<count { raw[index] = sample[index] }
            }
            guard let made = SmallASCIIString.make(words.0, words.1 | UInt64(count) << 56) else {
                Issue.record("no string for \(count) bytes")
                continue
            }
            let reference = String(decoding: sample[..<count], as: UTF8.self)
            #expect(unsafeBitCast(made, to: (UInt64, UInt64).self) == unsafeBitCast(reference, to: (UInt64, UInt64).self))
            #expect(made == reference && made.hashValue == reference.hashValue)
        }
    }

    @Test("packed words the fast path must not take")
    func refused() {
        let ab = UInt64(0x62_61)  // "ab"
        #expect(SmallASCIIString.make(ab, 2 << 56) == "ab")
        #expect(SmallASCIIString.make(0, 0) == "")
        #expect(SmallASCIIString.make(0xA9C3, 2 << 56) == nil)  // "é": not ASCII
        #expect(SmallASCIIString.make(ab, 0x80 << 48 | 9 << 56) == nil)  // a high byte in the second word
        #expect(SmallASCIIString.make(ab, 16 << 56) == nil)  // not an inline length
        #expect(SmallASCIIString.make(0x63_6261, 2 << 56) == nil)  // a byte past the length
        #expect(SmallASCIIString.make(ab, 0x41 | 2 << 56) == nil)  // one in the second word
        #expect(SmallASCIIString.make(ab, 0x41 << 8 | 9 << 56) == nil)  // past a length of 9
        #expect(SmallASCIIString.make(0x4141_4141_4141_4141, 0x41 | 9 << 56) == "AAAAAAAAA")
        let fifteen = SmallASCIIString.make(0x3837_3635_3433_3231, 0x0065_6463_6261_3039 | 15 << 56)
        #expect(fifteen == "1234567890abcde")
        #expect(fifteen?.utf8.count == 15)
    }
}
