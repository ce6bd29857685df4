import Testing
@testable import HiscoreCore
import HiscoreTestSupport

@Suite("Key encoding")
struct KeyEncodingTests {
    static let interesting: [Int64] = [.min, .min + 1, -1_000_000, -2, -1, 0, 1, 2, 255, 256, 1_000_000, .max - 1, .max]
    static let orders: [SortOrder] = [.descending, .ascending]

    @Test("score order is preserved for both orders, including Int64.min/max", arguments: orders)
    func scoreOrderPreserved(order: SortOrder) {
        let codec = KeyCodec(scoreOrder: order, subscoreOrder: .descending)
        for a in Self.interesting {
            for b in Self.interesting {
                let ka = codec.key(score: a, subscore: 0, sequence: 7)
                let kb = codec.key(score: b, subscore: 0, sequence: 7)
                let aBetter = order == .descending ? a > b : a < b
                #expect((ka < kb) == aBetter, "\(a) vs \(b), \(order)")
                #expect((ka == kb) == (a == b))
            }
        }
    }

    @Test("subscore breaks score ties in its own order, then the sequence", arguments: orders)
    func subscoreThenSequence(order: SortOrder) {
        let codec = KeyCodec(scoreOrder: .descending, subscoreOrder: order)
        for a in Self.interesting {
            for b in Self.interesting where a != b {
                let ka = codec.key(score: 5, subscore: a, sequence: 100)
                let kb = codec.key(score: 5, subscore: b, sequence: 1)
                #expect((ka < kb) == (order == .descending ? a > b : a < b))
            }
        }
        #expect(codec.key(score: 5, subscore: 5, sequence: 1) < codec.key(score: 5, subscore: 5, sequence: 2))
        // Score dominates subscore.
        #expect(codec.key(score: 6, subscore: .min, sequence: 9) < codec.key(score: 5, subscore: .max, sequence: 0))
    }

    @Test("round trip through words and bytes")
    func roundTrip() {
        var random = SplitMix64(seed: 1)
        for order in Self.orders {
            for subOrder in Self.orders {
                let codec = KeyCodec(scoreOrder: order, subscoreOrder: subOrder)
                for _ in 0..<500 {
                    let score = random.chance(20) ? Self.interesting[random.below(Self.interesting.count)] : Int64(bitPattern: random.next())
                    let subscore = Int64(bitPattern: random.next())
                    let sequence = random.next()
                    let key = codec.key(score: score, subscore: subscore, sequence: sequence)
                    #expect(codec.score(of: key) == score)
                    #expect(codec.subscore(of: key) == subscore)
                    #expect(codec.sequence(of: key) == sequence)
                    let bytes = key.bytes
                    #expect(bytes.count == 24)
                    #expect(RankKey(bytes: bytes) == key)
                    for depth in 0..<24 { #expect(key.byte(at: depth) == bytes[depth]) }
                }
            }
        }
    }

    @Test("byte order equals key order")
    func bytesOrder() {
        var random = SplitMix64(seed: 2)
        for _ in 0..<1000 {
            let a = RankKey(word0: random.next() % 4, word1: random.next() % 3, word2: random.next() % 5)
            let b = RankKey(word0: random.next() % 4, word1: random.next() % 3, word2: random.next() % 5)
            #expect((a < b) == a.bytes.lexicographicallyPrecedes(b.bytes))
            let difference = a.firstDifferingByte(from: b)
            if a == b { #expect(difference == 24) } else {
                #expect(a.bytes[..<difference] == b.bytes[..<difference])
                #expect(a.bytes[difference] != b.bytes[difference])
            }
        }
    }

    @Test("cursor bytes must be exactly 24")
    func cursorLength() {
        #expect(RankKey(bytes: [UInt8](repeating: 0, count: 23)) == nil)
        #expect(RankKey(bytes: [UInt8](repeating: 0, count: 25)) == nil)
        #expect(RankKey(bytes: [UInt8]()) == nil)
        #expect(RankKey(bytes: [UInt8](repeating: 0xFF, count: 24)) == RankKey.max)
    }

    @Test("score ranges map to key ranges", arguments: orders)
    func scoreRanges(order: SortOrder) {
        let codec = KeyCodec(scoreOrder: order)
        #expect(codec.keyRange(scoreMin: 5, scoreMax: 4) == nil)
        let range = codec.keyRange(scoreMin: -3, scoreMax: 3)!
        for score in Int64(-5)...5 {
            for subscore in [Int64.min, 0, .max] {
                for sequence in [UInt64(0), 1, .max] {
                    let inside = range.contains(codec.key(score: score, subscore: subscore, sequence: sequence))
                    #expect(inside == (-3...3).contains(score))
                }
            }
        }
        let all = codec.keyRange(scoreMin: nil, scoreMax: nil)!
        #expect(all.contains(codec.key(score: .min, subscore: .min, sequence: .max)))
        #expect(all.contains(codec.key(score: .max, subscore: .max, sequence: 0)))
    }

    @Test("tie group start precedes every key of the group")
    func tieGroups() {
        let codec = KeyCodec(scoreOrder: .descending)
        let key = codec.key(score: 10, subscore: 3, sequence: 99)
        #expect(key.tieGroupStart == codec.firstKey(score: 10, subscore: 3))
        #expect(key.tieGroupStart < key && key < codec.lastKey(score: 10, subscore: 3))
        #expect(codec.lastKey(score: 11, subscore: .min) < key.tieGroupStart)
        #expect(codec.rankProbe(for: key, mode: .ordinal) == key)
        #expect(codec.rankProbe(for: key, mode: .competition) == key.tieGroupStart)
    }
}
