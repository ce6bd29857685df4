import Foundation
import HiscoreCore
import HiscoreFuzzing
import HiscoreWire
import NIOCore
import Testing

/// Replays the fuzz corpus and every minimized crash through the harness of `hiscore-fuzz` in a
/// plain (unsanitized) test build, so a fixed bug stays fixed without libFuzzer. See fuzz/run.sh.
@Suite("Fuzz corpus and regressions")
struct FuzzRegressionTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Paths relative to the repository: fuzz/regressions/* then fuzz/corpus/*.
    static let inputs: [String] = ["fuzz/regressions", "fuzz/corpus"].flatMap { directory in
        let names = (try? FileManager.default.contentsOfDirectory(
            atPath: repositoryRoot.appendingPathComponent(directory).path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(directory)/\($0)" }
    }

    static func replay(_ path: String) throws -> FuzzReport {
        let bytes = try [UInt8](Data(contentsOf: repositoryRoot.appendingPathComponent(path)))
        return bytes.withUnsafeBytes { FuzzHarness.run($0) }
    }

    @Test("every corpus and regression input breaks no oracle", arguments: inputs)
    func replayInput(_ path: String) throws {
        let report = try Self.replay(path)
        #expect(report.violations.isEmpty, "\(path):\n\(report.violations.joined(separator: "\n"))")
        // Deterministic: a second run (on a warm thread arena) reports the same.
        let again = try Self.replay(path)
        #expect(again.frames == report.frames && again.requestsDecoded == report.requestsDecoded
            && again.responsesDecoded == report.responsesDecoded && again.framingError == report.framingError
            && again.preface == report.preface)
    }

    @Test("the seed corpus covers every vector and decodes as its name says")
    func seedsDecode() throws {
        let seeds = Self.inputs.filter { $0.hasPrefix("fuzz/corpus/") }
        #expect(seeds.count >= 60, "fuzz/corpus looks empty: run fuzz/make-corpus.py")
        for path in seeds {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            let report = try Self.replay(path)
            #expect(report.preface == .accepted, "\(name)")
            if name.hasPrefix("request_") {
                #expect(report.frames == 1 && report.requestsDecoded == 1 && report.framingError == nil, "\(name)")
            } else if name.hasPrefix("response_") {
                #expect(report.frames == 1 && report.responsesDecoded == 1 && report.framingError == nil, "\(name)")
            }
        }
        #expect(try Self.replay("fuzz/corpus/stream_ping_submit_get_rank").requestsDecoded == 3)
        #expect(try Self.replay("fuzz/corpus/stream_truncated_frame").framingError == .truncatedFrame(bufferedBytes: 26))
    }
}
