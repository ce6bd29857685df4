import Foundation
import HiscoreStorage
import HiscoreWire
import NIOCore
import Testing

@testable import HiscoreServer

@Suite("Backups run one at a time, off the event loops")
struct BackupServiceTests {
    @Test("a backup asked for while one runs is refused; once it ends, the next one runs")
    func oneAtATime() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-backups-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (persistence, _, _) = try Persistence.open(path: root + "/data", mode: .fsync, shards: 2)
        defer { persistence.close() }
        let service = BackupService(persistence: persistence, shards: fixture.shards)
        let loop = fixture.loop
        // Both asked for in one loop task: the first cannot have finished (its log flushes hop
        // to the shards' loops) when the second arrives.
        let (first, second) = try await loop.submit {
            (service.run(callID: 1, destination: root + "/one", on: loop), service.run(callID: 2, destination: root + "/two", on: loop))
        }.get()
        let refused = try await second.get()
        #expect(refused.status?.code == .failedPrecondition)
        #expect(refused.status?.message.contains("already running") == true)
        #expect(try await first.get().status == nil)
        let third = try await loop.flatSubmit { service.run(callID: 3, destination: root + "/three", on: loop) }.get()
        #expect(third.status == nil)
        #expect(FileManager.default.fileExists(atPath: root + "/three/FORMAT"))
        try await fixture.shutdown()
    }
}
