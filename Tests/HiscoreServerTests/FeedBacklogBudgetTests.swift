import NIOConcurrencyHelpers
import Testing

@testable import HiscoreServer

@Suite("Feed backlog budget")
struct FeedBacklogBudgetTests {
    /// Counts the budget's requests for relief, per holder.
    private final class Asks: Sendable {
        private let counts = NIOLockedValueBox([String: Int]())
        func relieve(_ name: String) -> @Sendable () -> Void { { self.counts.withLockedValue { $0[name, default: 0] += 1 } } }
        subscript(name: String) -> Int { counts.withLockedValue { $0[name] ?? 0 } }
    }

    private final class Holder {}

    @Test("a board asked once is not asked again until it holds an event's worth more; the next largest is asked instead")
    func settledHoldersAreNotAskedAgain() {
        let budget = FeedBacklogBudget(limitBytes: 100, slackBytes: 10)
        let asks = Asks()
        let big = ObjectIdentifier(Holder.self)
        let small = ObjectIdentifier(Int.self)
        func update(_ holder: ObjectIdentifier, _ name: String, _ bytes: Int) {
            budget.update(holder, bytes: bytes, relieve: asks.relieve(name))?()
        }

        update(big, "big", 80)
        update(small, "small", 15)
        #expect(asks["big"] == 0 && asks["small"] == 0, "within the bound")
        update(small, "small", 30)
        #expect(asks["big"] == 1, "past the bound the largest is asked")
        update(small, "small", 31)
        #expect(asks["big"] == 1 && asks["small"] == 0, "asked once until it is done")

        // Its feeds were all within an event: it ended nothing and still holds 80.
        budget.reliefDone(big)
        update(small, "small", 32)
        #expect(asks["big"] == 1, "a settled board is not asked at every write batch")
        #expect(asks["small"] == 1, "the next largest is asked instead: it may hold the lagging feed")
        budget.reliefDone(small)
        update(small, "small", 35)
        update(big, "big", 85)
        #expect(asks["big"] == 1 && asks["small"] == 1, "both settled, neither grew by an event")
        update(big, "big", 91)
        #expect(asks["big"] == 2, "a board that grew by more than an event since is asked again")
        budget.reliefDone(big)
        update(big, "big", 0)
        update(small, "small", 0)
        #expect(budget.held == 0)
    }
}
