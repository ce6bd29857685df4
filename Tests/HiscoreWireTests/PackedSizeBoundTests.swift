import HiscoreCore
@testable import HiscoreWire
import NIOCore
import Testing

/// `PackedSizeBound` sizes the buffer protobuf-c's `pack` writes into without bounds checks: a
/// bound below the packed size would be a buffer overrun. Every message built here takes fields
/// to their widest encodings (negative int64s, UInt64.max, multi-byte UTF-8, embedded NULs,
/// lengths crossing varint widths).
@Suite("packed size bound")
struct PackedSizeBoundTests {
    @Test("the bound is at least the packed size, for random responses of every bounded kind")
    func boundHolds() throws {
        var generator = seededGenerator(for: "PackedSizeBoundTests.boundHolds")
        for _ in 0..<1_500 {
            let envelope = randomEnvelope(&generator)
            let bound = try #require(PackedSizeBound.response(envelope), "\(envelope.result.map { "\($0)".prefix(40) } ?? "nil")")
            let exact = PackedSizeBound.exact(envelope)
            #expect(bound >= exact, "bound \(bound) < packed size \(exact)")
            if bound < exact { break }  // encoding it would overrun its buffer
        }
    }

    @Test("every fixture response that has a bound is within it")
    func fixtures() {
        for envelope in Fixtures.responses {
            guard let bound = PackedSizeBound.response(envelope) else { continue }
            #expect(bound >= PackedSizeBound.exact(envelope))
        }
    }

    @Test("results the bound does not cover are sized by protobuf-c")
    func uncoveredResults() {
        #expect(PackedSizeBound.response(ResponseEnvelope(callID: 1, result: .count(CountResponse(count: 1, boardSize: 2)))) == nil)
        #expect(PackedSizeBound.response(ResponseEnvelope(callID: 1, result: .ping(payload: [1]))) == nil)
        #expect(PackedSizeBound.response(.failure(callID: 7, Status(.notFound, "no such board"))) != nil)
    }

    // MARK: Generators

    private func randomEnvelope(_ g: inout SeededGenerator) -> ResponseEnvelope {
        let callID = randomUInt64(&g)
        let status: Status? = Bool.random(using: &g) ? nil : Status(randomCode(&g), randomString(&g, maxCount: 300))
        let result: ResponseResult?
        switch Int.random(in: 0..<9, using: &g) {
        case 0: result = nil
        case 1: result = .submit(randomSubmit(&g))
        case 2:
            result = .submitBatch((0..<Int.random(in: 0...40, using: &g)).map { _ in
                Bool.random(using: &g)
                    ? SubmitResult(status: .ok, response: randomSubmit(&g))
                    : SubmitResult(status: Status(randomCode(&g), randomString(&g, maxCount: 200)), response: nil)
            })
        case 3: result = .getRank(GetRankResponse(entry: randomEntry(&g), boardSize: randomUInt64(&g)))
        case 4:
            result = .top(TopResponse(
                entries: randomEntries(&g), nextCursor: randomBytes(&g, maxCount: 300), boardSize: randomUInt64(&g)))
        case 5: result = .around(EntriesResponse(entries: randomEntries(&g), boardSize: randomUInt64(&g)))
        case 6:
            result = .entries(EntriesResponse(
                entries: randomEntries(&g),
                missingPlayerIDs: (0..<Int.random(in: 0...20, using: &g)).map { _ in randomString(&g, maxCount: 200) },
                boardSize: randomUInt64(&g)))
        case 7:
            let entries = randomEntries(&g).map {
                LeaderboardEntry(
                    playerID: $0.playerID, score: $0.score, subscore: $0.subscore, metadata: $0.metadata,
                    sequence: randomUInt64(&g), key: .min)
            }
            result = .rankedTop(RankedTop(
                entries: entries, ranks: entries.map { _ in randomUInt64(&g) }, nextCursor: randomBytes(&g, maxCount: 300),
                boardSize: randomUInt64(&g)))
        default:
            result = .packed(PackedResult.top(TopResponse(
                entries: randomEntries(&g), nextCursor: randomBytes(&g, maxCount: 40), boardSize: randomUInt64(&g))))
        }
        return ResponseEnvelope(callID: callID, status: status, result: result)
    }

    private func randomSubmit(_ g: inout SeededGenerator) -> SubmitResponse {
        SubmitResponse(
            entry: randomEntry(&g), previousRank: randomUInt64(&g), changed: Bool.random(using: &g),
            created: Bool.random(using: &g))
    }

    private func randomEntries(_ g: inout SeededGenerator) -> [WireEntry] {
        (0..<Int.random(in: 0...60, using: &g)).map { _ in randomEntry(&g) }
    }

    private func randomEntry(_ g: inout SeededGenerator) -> WireEntry {
        WireEntry(
            playerID: randomString(&g, maxCount: 200), score: randomInt64(&g), subscore: randomInt64(&g),
            rank: randomUInt64(&g), metadata: randomBytes(&g, maxCount: Int.random(in: 0..<30, using: &g) == 0 ? 20_000 : 200),
            reachedAtMicros: randomInt64(&g))
    }

    private func randomCode(_ g: inout SeededGenerator) -> StatusCode {
        StatusCode.allCases.randomElement(using: &g) ?? .unknown
    }

    /// Extremes half the time: the widest varints (negative, max) and zero (omitted).
    private func randomInt64(_ g: inout SeededGenerator) -> Int64 {
        switch Int.random(in: 0..<4, using: &g) {
        case 0: [Int64.min, -1, 0, .max].randomElement(using: &g) ?? 0
        default: Int64(bitPattern: g.next() >> UInt64.random(in: 0...63, using: &g))
        }
    }

    private func randomUInt64(_ g: inout SeededGenerator) -> UInt64 {
        Bool.random(using: &g) ? [0, 1, 127, 128, .max].randomElement(using: &g) ?? 0 : g.next() >> UInt64.random(in: 0...63, using: &g)
    }

    private func randomBytes(_ g: inout SeededGenerator, maxCount: Int) -> [UInt8] {
        (0..<Int.random(in: 0...maxCount, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// ASCII, a NUL (protobuf-c stops at it), two-, three- and four-byte UTF-8.
    private func randomString(_ g: inout SeededGenerator, maxCount: Int) -> String {
        let alphabet: [Character] = ["a", "Z", "0", ":", "\u{0}", "é", "プ", "🎮"]
        return String((0..<Int.random(in: 0...maxCount, using: &g)).map { _ in alphabet.randomElement(using: &g) ?? "a" })
    }
}
