import Synchronization

/// The lock that makes a shard's state exclusive to one thread at a time (see `Shard`).
///
/// Cost: one uncontended acquire and release, ~20-40 ns, against 7-40 µs for a hop between loops.
/// `withLock` is for the shard's own loop, which must run its trips whoever is inside (it waits
/// at most one trip: holders never wait for another gate or complete anything while inside);
/// `withLockIfFree` is for the other loops, which hand the trip to the shard's loop rather than
/// wait.
final class ShardGate: Sendable {
    private let mutex = Mutex(())

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try mutex.withLock { _ in try body() }
    }

    /// nil (body not run) when another thread holds the gate.
    func withLockIfFree<T>(_ body: () -> T) -> T? {
        mutex.withLockIfAvailable { _ in body() }
    }
}
