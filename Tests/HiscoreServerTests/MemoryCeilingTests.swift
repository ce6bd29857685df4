import Dispatch
import Testing

@testable import HiscoreServer

/// `MemoryCeiling.refresh` from several shards at once: the flag must end with the latest reading.
@Suite("Memory ceiling refreshes")
struct MemoryCeilingTests {
    /// A refresh that read a high figure (from before a board was freed) is slow to store it; a
    /// second refresh starts meanwhile and reads the low figure. The second must not finish
    /// first and be overwritten: it waits for the first (the reader gives it 0.5 s to get
    /// ahead, which it can only do if refreshes may overlap).
    @Test("a refresh that reads after another stores after it: the latest reading wins")
    func latestReadingWins() async {
        let firstReading = DispatchSemaphore(value: 0)
        let secondDone = DispatchSemaphore(value: 0)
        let readings = ReadingScript()
        let ceiling = MemoryCeiling(limitBytes: 100) {
            if readings.next() == 0 {
                firstReading.signal()
                _ = secondDone.wait(timeout: .now() + 0.5)  // overlapping refreshes would finish here
                return 150  // above the ceiling: read before the board was freed
            }
            return 50
        }
        // Off the cooperative pool, each on a thread of its own (queues of their own: the global
        // queue's threads, one per CPU here, would all be blocked): the refreshes block them.
        let finished = await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            DispatchQueue(label: "memory-ceiling-test").async {
                let both = DispatchGroup()
                both.enter()
                DispatchQueue(label: "first-refresh").async {
                    ceiling.refresh()
                    both.leave()
                }
                _ = firstReading.wait(timeout: .now() + 10)
                both.enter()
                DispatchQueue(label: "second-refresh").async {
                    ceiling.refresh()
                    secondDone.signal()
                    both.leave()
                }
                done.resume(returning: both.wait(timeout: .now() + 10) == .success)
            }
        }
        #expect(finished)
        #expect(!ceiling.isExceeded, "the older, higher reading was stored last")
        #expect(ceiling.allocatedBytes == 50)
    }
}

/// Hands out 0, 1, 2… to the ceiling's reader, from any thread.
private final class ReadingScript: @unchecked Sendable {
    private var count = 0
    private let lock = DispatchSemaphore(value: 1)
    func next() -> Int {
        lock.wait()
        defer { lock.signal() }
        count += 1
        return count - 1
    }
}
