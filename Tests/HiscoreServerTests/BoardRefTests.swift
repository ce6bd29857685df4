import HiscoreCore
import Testing

@testable import HiscoreServer

/// `BoardRef` does not keep its board alive; debug builds (the tests') notice when it outlived
/// it, which is what every use asserts against.
@Suite("Board references in shard operations")
struct BoardRefTests {
    private static func makeBoard(_ id: String, incarnation: UInt64) -> BoardHandle {
        BoardHandle(
            config: BoardConfig.defaultConfig(id: id), incarnation: incarnation, partitionCount: 2, homeShard: 0,
            topCacheBudget: TopCacheBudget(limitBytes: 1 << 20))
    }

    @Test("a reference reads its board while the board lives, and neither retains nor keeps it")
    func doesNotKeepItsBoard() {
        var board: BoardHandle? = Self.makeBoard("kept", incarnation: 7)
        weak let watched = board
        let reference = BoardRef(board.unsafelyUnwrapped)
        #expect(reference.incarnation == 7)
        #expect(reference.same(as: BoardRef(board.unsafelyUnwrapped)))
        #expect(!reference.same(as: BoardRef(Self.makeBoard("other", incarnation: 8))))
        #if DEBUG
        #expect(reference.boardIsAlive)
        #endif
        board = nil
        #expect(watched == nil, "a BoardRef kept its board alive")
        #if DEBUG
        #expect(!reference.boardIsAlive, "debug builds must see that the board is gone")
        #endif
    }
}
