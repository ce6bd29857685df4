/// A board as a shard operation carries it: a reference that is not counted.
///
/// Why: a `BoardHandle` is shared by every event loop, and each retain or release of it is an
/// atomic write to its header. An operation is copied into its trip on the caller's loop and
/// read out of it on the shard's, and each copy retained and released the board there: with two
/// shards that cache line went back and forth between the CPUs for every call (the copies and
/// destroys of operations were ~6% of a two-shard rank's server CPU under perf, most of it
/// waiting on those atomics).
///
/// Why it is safe: an operation lives in its plan's step and then in a trip for one phase, and
/// the plan that made it holds its board strongly for as long as the plan lives, which is
/// longer (a round keeps its calls' plans until it ends, after every trip is back). Every
/// operation is made from a board its maker holds (`ShardOperation`'s cases that take one).
///
/// Debug builds (the tests') also keep a weak reference and assert on every use that the board
/// is still alive: an operation that outlived its board fails there, at the use, instead of
/// reading freed memory.
struct BoardRef: @unchecked Sendable {
    private let unmanaged: Unmanaged<BoardHandle>
    #if DEBUG
    private weak var alive: BoardHandle?
    #endif

    init(_ board: BoardHandle) {
        unmanaged = .passUnretained(board)
        #if DEBUG
        alive = board
        #endif
    }

    /// `body` with the board, neither retained nor released.
    @inline(__always)
    func with<Result>(_ body: (BoardHandle) throws -> Result) rethrows -> Result {
        #if DEBUG
        assert(boardIsAlive, "a shard operation outlived the board it names")
        #endif
        return try unmanaged._withUnsafeGuaranteedRef(body)
    }

    #if DEBUG
    /// Debug builds: whether the board is still alive (what `with` asserts).
    var boardIsAlive: Bool { alive != nil }
    #endif

    var incarnation: UInt64 { with { $0.incarnation } }

    /// Whether both name the same board (the same incarnation object).
    func same(as other: BoardRef) -> Bool { unmanaged.toOpaque() == other.unmanaged.toOpaque() }
}
