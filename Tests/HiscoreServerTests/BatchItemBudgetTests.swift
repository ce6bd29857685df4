@testable import HiscoreServer
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// `BatchItemBudget`, a loop's share of the submit-batch items in flight: the counting, the
/// waiters and the tickets that give items back.
@Suite("Batch item budget", .timeLimit(.minutes(1)))
struct BatchItemBudgetTests {
    @Test("full at its limit; a freed ticket gives its items back")
    func countsTickets() {
        let loop = EmbeddedEventLoop()
        let budget = BatchItemBudget(limit: 1000, loop: loop)
        var first: BatchItemTicket? = budget.take(600)
        #expect(!budget.isFull && budget.inFlight == 600)
        let second = budget.take(600)
        #expect(budget.isFull && budget.inFlight == 1200)
        first = nil
        #expect(first == nil && !budget.isFull && budget.inFlight == 600)
        withExtendedLifetime(second) {}
    }

    @Test("a waiter runs on a later turn of the loop once it is under, and once only")
    func waitersRunOnceUnder() throws {
        let loop = EmbeddedEventLoop()
        let budget = BatchItemBudget(limit: 1000, loop: loop)
        var ticket: BatchItemTicket? = budget.take(1000)
        var resumed = 0
        budget.resumeWhenUnder { resumed += 1 }
        loop.run()
        #expect(resumed == 0 && budget.waiting == 1, "woken while the loop was full")
        ticket = nil
        #expect(ticket == nil && resumed == 0, "woken inside the release, not on a later turn")
        loop.run()
        #expect(resumed == 1 && budget.waiting == 0)
        // Filling and emptying the loop again wakes nobody: the waiter ran.
        ticket = budget.take(2000)
        ticket = nil
        loop.run()
        #expect(resumed == 1)
        try loop.syncShutdownGracefully()
    }

    @Test("a waiter that asks while the loop is under runs on the next turn; once one fills it, the rest wait their turn")
    func waitersStopWhenFull() {
        let loop = EmbeddedEventLoop()
        let budget = BatchItemBudget(limit: 1000, loop: loop)
        var order: [String] = []
        var taken: BatchItemTicket?
        budget.resumeWhenUnder {
            order.append("first")
            taken = budget.take(1000)  // fills the loop again
        }
        budget.resumeWhenUnder { order.append("second") }
        #expect(order.isEmpty)
        loop.run()
        #expect(order == ["first"], "a waiter ran while the loop was full")
        #expect(budget.waiting == 1)
        taken = nil
        #expect(taken == nil)
        loop.run()
        #expect(order == ["first", "second"])
    }

    @Test("held writers get the loop's room in turn, not the first in line each time")
    func writersTakeTurns() {
        let loop = EmbeddedEventLoop()
        let budget = BatchItemBudget(limit: 1000, loop: loop)
        var held: [BatchItemTicket] = [budget.take(1000)]
        var admitted: [String] = []
        // What a held connection does when woken: admit a batch if there is room, and wait
        // again while the loop is full (waitForLoopBudget, resumeHeld).
        func wait(_ writer: String) {
            budget.resumeWhenUnder {
                if !budget.isFull {
                    admitted.append(writer)
                    held.append(budget.take(1000))
                }
                if budget.isFull { wait(writer) }
            }
        }
        wait("A")
        wait("B")
        wait("C")
        for _ in 0..<5 {
            held.removeFirst()
            loop.run()
        }
        #expect(admitted == ["A", "B", "C", "A", "B"])
    }

    @Test("a ticket freed off its loop gives its items back on the loop")
    func ticketFreedElsewhere() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let budget = try await loop.submit { NIOLoopBound(BatchItemBudget(limit: 10, loop: loop), eventLoop: loop) }.get()
        final class Holder: @unchecked Sendable { var ticket: BatchItemTicket? }
        let holder = Holder()
        try await loop.submit { holder.ticket = budget.value.take(50) }.get()
        #expect(try await loop.submit { budget.value.inFlight }.get() == 50)
        holder.ticket = nil  // freed on this thread, not the loop
        // The release was queued on the loop before this read.
        #expect(try await loop.submit { budget.value.inFlight }.get() == 0)
        try await group.shutdownGracefully()
    }
}
