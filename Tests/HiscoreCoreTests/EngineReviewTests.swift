import Testing

@testable import HiscoreCore

/// Findings of a review of the engine's public API, each a test that failed before its fix.
@Suite("Engine review: restore, reset boundaries, memory accounting")
struct EngineReviewTests {
    @Test("restore sets exactly the given state on a decrement board (it applied the operator: every restart negated the scores)")
    func restoreIgnoresOperator() throws {
        let partition = BoardPartition(config: BoardConfig(id: "d", writeOperator: .decrement))
        try partition.restore(playerID: "alice", score: 70, subscore: 3, metadata: [1], sequence: 10)
        try partition.restore(playerID: "bob", score: .min, subscore: 0, metadata: [], sequence: 11)
        #expect(partition.entry(for: "alice")?.score == 70)
        #expect(partition.entry(for: "bob")?.score == .min)
        let live = BoardPartition(config: BoardConfig(id: "d", writeOperator: .decrement))
        let written = try live.write(playerID: "carol", score: 5, subscore: 0, metadata: nil, sequence: 12).current
        #expect(written.score == -5, "a new player's first decrement starts from 0")
        let recovered = BoardPartition(config: BoardConfig(id: "d", writeOperator: .decrement))
        try recovered.restore(playerID: "carol", score: written.score, subscore: written.subscore, metadata: written.metadata, sequence: written.sequence)
        #expect(recovered.entry(for: "carol") == written, "live \(written), after recovery \(String(describing: recovered.entry(for: "carol")))")
        partition.checkInvariants()
        recovered.checkInvariants()
    }

    @Test("a refused restore leaves the player's entry as it was (it removed the player first)")
    func refusedRestoreKeepsEntry() throws {
        let partition = BoardPartition(config: BoardConfig(id: "r", writeOperator: .set))
        _ = try partition.write(playerID: "alice", score: 5, subscore: 0, metadata: [1], sequence: 10)
        _ = try partition.write(playerID: "bob", score: 6, subscore: 0, metadata: nil, sequence: 20)
        #expect(throws: WriteError.duplicateKey(sequence: 20)) {
            try partition.restore(playerID: "alice", score: 6, subscore: 0, metadata: [], sequence: 20)
        }
        let alice = partition.entry(for: "alice")
        #expect(alice?.score == 5 && alice?.sequence == 10 && alice?.metadata == [1], "alice after refused restore: \(String(describing: alice))")
        #expect(partition.count == 2)
        partition.checkInvariants()
    }

    @Test("reset boundaries of extreme instants do not trap; they are taken within years 1 ... 9999")
    func resetExtremes() async {
        await #expect(processExitsWith: .success) {
            _ = ResetSchedule(period: .daily).lastBoundary(atOrBefore: .min)
        }
        await #expect(processExitsWith: .success) {
            _ = ResetSchedule(period: .daily, minuteOfDay: 1439).nextBoundary(after: .max)
            _ = ResetSchedule(period: .weekly, weekday: 7).nextBoundary(after: .max)
            _ = ResetSchedule(period: .monthly, dayOfMonth: 28).nextBoundary(after: .max)
            _ = ResetSchedule(period: .monthly, dayOfMonth: 28).lastBoundary(atOrBefore: .min)
        }
        #expect(ResetSchedule.floorDiv(.min, ResetSchedule.microsPerDay) == -106_751_992)  // Int64.min is -106,751,991.17 days
        #expect(ResetSchedule.floorDiv(-1, 7) == -1 && ResetSchedule.floorDiv(-7, 7) == -1 && ResetSchedule.floorDiv(-8, 7) == -2)
    }

    @Test("metadata blobs are accounted with their length header, and go back to 0 when removed")
    func metadataAccounting() throws {
        let partition = BoardPartition(config: BoardConfig(id: "m", writeOperator: .set))
        for index in 0..<1000 {
            _ = try partition.write(playerID: "p\(index)", score: Int64(index), subscore: 0, metadata: [1], sequence: UInt64(index + 1))
        }
        #expect(partition.memoryUsage.blobs >= 1000 * 5, "\(partition.memoryUsage)")
        for index in 0..<1000 { _ = partition.remove(playerID: "p\(index)") }
        #expect(partition.memoryUsage.blobs == 0, "\(partition.memoryUsage)")
    }
}
