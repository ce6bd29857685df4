import HiscoreCore
import Testing

@testable import HiscoreServer
import HiscoreTestSupport

/// `KeyMoves` against the definition: the shift at K is #{new keys < K} - #{old keys < K}.
@Suite("Rank shifts from key moves")
struct KeyMovesTests {
    private func key(_ value: UInt64) -> RankKey { RankKey(word0: value / 7, word1: value % 7, word2: value) }

    @Test("the shift at any key equals the count of new keys below it minus the old ones", arguments: [1, 2, 3])
    func matchesDefinition(round: Int) {
        let seed = DifferentialServerTests.seed()
        var random = SplitMix64(seed: seed)
        var moves = KeyMoves()
        var previous: [RankKey] = []
        var current: [RankKey] = []
        for _ in 0..<(50 * round) {
            let old = random.next(below: 4) == 0 ? nil : key(random.next(below: 1_000))
            let new = random.next(below: 4) == 0 ? nil : key(random.next(below: 1_000))
            moves.add(previous: old, current: new)
            if let old { previous.append(old) }
            if let new { current.append(new) }
        }
        moves.seal()
        for probe in 0..<1_002 {
            let k = key(UInt64(probe))
            let expected = current.filter { $0 < k }.count - previous.filter { $0 < k }.count
            #expect(moves.shift(at: k) == expected, "seed \(seed), key \(probe)")
        }
    }

    @Test("no moves shift nothing; a player written twice counts once, from first to last key")
    func telescopes() {
        var empty = KeyMoves()
        empty.seal()
        #expect(empty.isEmpty && empty.shift(at: key(5)) == 0)
        var moves = KeyMoves()
        moves.add(previous: key(900), current: key(500))  // A -> B
        moves.add(previous: key(500), current: key(100))  // B -> C
        moves.seal()
        #expect(!moves.isEmpty)
        // Net move 900 -> 100: every key in between is passed once, whatever the stop at 500.
        #expect(moves.shift(at: key(300)) == 1)
        #expect(moves.shift(at: key(700)) == 1)
        #expect(moves.shift(at: key(950)) == 0)
        #expect(moves.shift(at: key(50)) == 0)
    }

    @Test("a cut reflects the notes up to its number on each shard and is covered once they arrived")
    func cuts() {
        let cut = StreamCut(sequences: [3, 0])
        #expect(cut.isCovered(byReceived: [3, 0]))
        #expect(!cut.isCovered(byReceived: [2, 5]))
        #expect(cut.isCovered(byReceived: [4, 1]))
    }
}
