import Foundation
import HiscoreTestSupport
import Testing

@Suite("Generated protobuf-c code")
struct GeneratedCodeStalenessTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let generatedFiles = [
        "Sources/HiscoreProtoC/include/hiscore/v1/hiscore.pb-c.h",
        "Sources/HiscoreProtoC/hiscore/v1/hiscore.pb-c.c",
    ]

    @Test("the committed protobuf-c files match proto/ (else: run make proto)")
    func upToDate() async throws {
        let outputRoot = FileManager.default.temporaryDirectory
            .appendingPathComponent("hiscore-gen-proto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outputRoot, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outputRoot) }

        let script = Process()
        script.executableURL = Self.repositoryRoot.appendingPathComponent("scripts/gen-proto.sh")
        script.environment = ProcessInfo.processInfo.environment.merging(["OUT_ROOT": outputRoot.path]) { $1 }
        let errors = Pipe()
        script.standardError = errors
        try await offCooperativePool {
            try script.run()
            script.waitUntilExit()
        }
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try #require(script.terminationStatus == 0, "scripts/gen-proto.sh failed: \(errorText)")

        for path in Self.generatedFiles {
            let committed = try Data(contentsOf: Self.repositoryRoot.appendingPathComponent(path))
            let regenerated = try Data(contentsOf: outputRoot.appendingPathComponent(path))
            #expect(committed == regenerated, "\(path) is stale: run make proto")
        }
    }
}
