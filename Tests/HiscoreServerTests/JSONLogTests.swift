import Foundation
@testable import HiscoreServer
import Logging
import NIOConcurrencyHelpers
import Testing

@Suite("JSON log lines")
struct JSONLogTests {
    /// Lines a handler wrote, each parsed back as a JSON object.
    private final class Lines: Sendable {
        private let lines = NIOLockedValueBox([String]())
        var write: @Sendable (String) -> Void { { line in self.lines.withLockedValue { $0.append(line) } } }
        var all: [String] { lines.withLockedValue { $0 } }
    }

    private static func object(_ line: String) throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(parsed as? [String: Any], "\(line)")
    }

    @Test("one object per line: fixed fields, metadata as fields, hostile text escaped")
    func format() throws {
        let lines = Lines()
        var logger = Logger(label: "hiscored") { JSONLogHandler(label: $0, write: lines.write) }
        logger[metadataKey: "shard"] = "1"
        let hostile = "board \"x\"\n{\"level\":\"critical\"}\\ \u{01}\u{7F}\u{2028} é 🎮"
        logger.warning("\(hostile)", metadata: ["player": .string("p\n1"), "ids": .array(["a", "b"]), "level": "spoofed"])
        logger.debug("below the level")

        #expect(lines.all.count == 1)
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix("}\n") && line.dropLast().allSatisfy { $0 != "\n" }, "one line: \(line)")
        let fields = try Self.object(line)
        #expect(fields["level"] as? String == "warning", "metadata named like a fixed field does not replace it")
        #expect(fields["label"] as? String == "hiscored")
        #expect(fields["message"] as? String == hostile)
        #expect(fields["shard"] as? String == "1")
        #expect(fields["player"] as? String == "p\n1")
        #expect(fields["ids"] as? [String] == ["a", "b"])
        let time = try #require(fields["time"] as? String)
        #expect(time.count == 24 && time.hasSuffix("Z"), "\(time)")
    }

    @Test("timestamps: UTC with milliseconds, zero-padded, leap day included")
    func timestamps() {
        #expect(JSONLogHandler.timestamp(microsSinceEpoch: 0) == "1970-01-01T00:00:00.000Z")
        #expect(JSONLogHandler.timestamp(microsSinceEpoch: 1_764_546_299_123_456) == "2025-11-30T23:44:59.123Z")
        #expect(JSONLogHandler.timestamp(microsSinceEpoch: 951_782_400_999_999) == "2000-02-29T00:00:00.999Z")
    }

    @Test("hiscored --log-format json writes every line as a JSON object; an unknown format is refused")
    func server() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try await ServerProcess.start(arguments: ["--data-dir", directory.path, "--durability", "memory", "--log-format", "json"])
        await server.stop()
        let lines = server.log.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("listening on 127.0.0.1:") })
        for line in lines {
            let fields = try Self.object(line)
            #expect(fields["message"] is String && fields["level"] is String, "\(line)")
        }
        await #expect(throws: ServerProcessError.self) {
            try await ServerProcess.start(arguments: ["--data-dir", directory.path, "--durability", "memory", "--log-format", "xml"])
        }
    }
}
