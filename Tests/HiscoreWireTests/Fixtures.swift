import Foundation
import HiscoreCore
import HiscoreWire
import NIOCore
import Testing
import HiscoreTestSupport

/// Sample envelopes covering every method, result and event shape, with edge values.
enum Fixtures {
    static let unicodePlayer = "プレイヤー🎮-Zoë"
    static let hugeMetadata = (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    static func entry(_ playerID: String = "alice", rank: UInt64 = 1, metadata: [UInt8] = [1, 2, 3]) -> WireEntry {
        WireEntry(
            playerID: playerID, score: 1_234, subscore: -5, rank: rank, metadata: metadata,
            reachedAtMicros: 1_700_000_000_000_000)
    }

    static let edgeEntries: [WireEntry] = [
        entry(),
        WireEntry(playerID: "", score: 0),
        WireEntry(playerID: "max", score: .max, subscore: .max, rank: .max, metadata: [], reachedAtMicros: .max),
        WireEntry(playerID: "min", score: .min, subscore: .min, rank: 0, metadata: [0], reachedAtMicros: .min),
        entry(unicodePlayer, rank: 42, metadata: hugeMetadata),
    ]

    static let boardConfigs: [BoardConfig] = [
        BoardConfig(id: "season-1"),
        BoardConfig(
            id: "laps.fastest:eu", scoreOrder: .ascending, subscoreOrder: .ascending, writeOperator: .set,
            rankMode: .competition, limits: BoardLimits(maxEntries: 1_000_000, maxMetadataBytes: 4096)),
        BoardConfig(id: "b", writeOperator: .increment, rankMode: .dense, limits: BoardLimits(maxEntries: 0, maxMetadataBytes: 1)),
        BoardConfig(id: "", writeOperator: .decrement, limits: BoardLimits(maxEntries: Int.max, maxMetadataBytes: 256)),
    ]

    static let submits: [SubmitRequest] = [
        SubmitRequest(boardID: "season-1", playerID: "alice", score: 100),
        SubmitRequest(boardID: "season-1", playerID: unicodePlayer, score: .max, subscore: .min, metadata: []),
        SubmitRequest(boardID: "", playerID: "", score: .min, subscore: .max, metadata: hugeMetadata),
        SubmitRequest(boardID: "b", playerID: "p", score: -1, metadata: [0, 255, 0]),
        SubmitRequest(boardID: "b", playerID: "p", score: 7, skipRanks: true),
    ]

    /// One or more envelopes per request method.
    static let requests: [RequestEnvelope] = {
        var methods: [RequestMethod] = submits.map { .submit($0) }
        methods += [
            .submitBatch(submits),
            .submitBatch([]),
            .getRank(GetRankRequest(boardID: "season-1", playerID: "alice")),
            .getRank(GetRankRequest(boardID: "season-1", playerID: unicodePlayer, rankMode: .dense)),
            .top(TopRequest(boardID: "season-1")),
            .top(TopRequest(boardID: "season-1", limit: 0, start: .offset(.max), rankMode: .competition)),
            .top(TopRequest(boardID: "season-1", limit: 500, start: .cursor([9, 8, 7]), rankMode: .ordinal)),
            .top(TopRequest(boardID: "season-1", start: .cursor([]))),
            .around(AroundRequest(boardID: "b", playerID: "alice", before: 5, after: .max, rankMode: .dense)),
            .around(AroundRequest(boardID: "b", playerID: "", before: 0, after: 0)),
            .entries(EntriesRequest(boardID: "b", playerIDs: ["alice", "", unicodePlayer, "bob"], rankMode: .competition)),
            .entries(EntriesRequest(boardID: "b", playerIDs: [])),
            .count(CountRequest(boardID: "b")),
            .count(CountRequest(boardID: "b", minScore: .min, maxScore: .max)),
            .count(CountRequest(boardID: "b", minScore: 0)),
            .count(CountRequest(boardID: "b", maxScore: -7)),
            .describeBoard(boardID: "season-1"),
            .describeBoard(boardID: ""),
            .listBoards(ListBoardsRequest()),
            .listBoards(ListBoardsRequest(afterBoardID: "m", limit: 100)),
            .deleteBoard(boardID: "season-1"),
            .removePlayer(RemovePlayerRequest(boardID: "season-1", playerID: unicodePlayer)),
            .erasePlayer(playerID: unicodePlayer),
            .erasePlayer(playerID: ""),
            .subscribe(SubscribeRequest(boardID: "b", target: .player("alice"))),
            .subscribe(SubscribeRequest(boardID: "b", target: .player(""), minIntervalMillis: 20, rankMode: .dense)),
            .subscribe(SubscribeRequest(boardID: "b", target: .top(10), rankMode: .competition)),
            .subscribe(SubscribeRequest(boardID: "b", target: .top(0))),
            .subscribe(SubscribeRequest(boardID: "b", target: .around(playerID: unicodePlayer, before: 3, after: 4))),
            .subscribe(SubscribeRequest(boardID: "b", target: .feed, minIntervalMillis: .max)),
            .cancel(callID: 0),
            .cancel(callID: .max),
            .ping(payload: []),
            .ping(payload: Array(repeating: 0xAB, count: 1024)),
        ]
        methods += boardConfigs.map { .createBoard($0) }
        var envelopes = methods.enumerated().map { index, method in
            RequestEnvelope(callID: UInt64(index + 1), method: method)
        }
        envelopes.append(RequestEnvelope(callID: .max, deadlineMillis: .max, authToken: "key-🔑", method: .ping(payload: [1])))
        envelopes.append(RequestEnvelope(callID: 0, method: nil))
        envelopes.append(RequestEnvelope(callID: 99, deadlineMillis: 250, authToken: "token", method: nil))
        return envelopes
    }()

    static let events: [RankEvent] = [
        RankEvent(
            boardVersion: 1, snapshot: true,
            change: .player(PlayerRankChange(entry: entry(), previousRank: 0, present: true))),
        RankEvent(
            boardVersion: .max, snapshot: false,
            change: .player(PlayerRankChange(entry: WireEntry(playerID: "gone", score: 0), previousRank: 7, present: false))),
        RankEvent(
            boardVersion: 3, snapshot: true,
            change: .window(WindowUpdate(entries: edgeEntries, changes: [], windowSize: 5))),
        RankEvent(
            boardVersion: 4, snapshot: false,
            change: .window(
                WindowUpdate(
                    entries: [],
                    changes: [
                        WindowChange(kind: .entered, entry: entry("new"), position: 0, previousPosition: 0),
                        WindowChange(kind: .left, entry: entry("old", rank: 0), position: 0, previousPosition: 9),
                        WindowChange(kind: .moved, entry: entry(unicodePlayer), position: .max, previousPosition: 2),
                    ],
                    windowSize: 10))),
        RankEvent(boardVersion: 5, snapshot: false, change: .window(WindowUpdate(entries: [], changes: [], windowSize: 0))),
        RankEvent(
            boardVersion: 6, snapshot: false,
            change: .feed([
                FeedItem(entry: entry(), previousRank: 0, created: true, removed: false, boardVersion: 6),
                FeedItem(entry: entry("bob", rank: 0), previousRank: 3, created: false, removed: true, boardVersion: .max),
            ])),
        RankEvent(boardVersion: 0, snapshot: true, change: .feed([])),
    ]

    static let hello = ServerHello(
        protocolVersion: 1, serverVersion: "hiscored 0.1.0", maxFrameBytes: 4 << 20, maxInflightCalls: 1024,
        maxBatchSubmits: 1000, maxPageEntries: 1000, maxPlayersPerQuery: 1000, maxSubscriptions: 64,
        maxMetadataBytes: 4096)

    static let boardInfos: [BoardInfo] = boardConfigs.enumerated().map { index, config in
        BoardInfo(config: config, size: UInt64(index) * 1_000, version: index == 0 ? .max : UInt64(index))
    }

    /// One or more envelopes per result kind, plus status-only frames.
    static let responses: [ResponseEnvelope] = {
        var results: [ResponseResult] = [
            .hello(hello),
            .hello(ServerHello(
                protocolVersion: 0, serverVersion: "", maxFrameBytes: 0, maxInflightCalls: 0, maxBatchSubmits: 0,
                maxPageEntries: 0, maxPlayersPerQuery: 0, maxSubscriptions: 0, maxMetadataBytes: 0)),
            .submit(SubmitResponse(entry: entry(), previousRank: 0, changed: true, created: true)),
            .submit(SubmitResponse(entry: edgeEntries[2], previousRank: .max, changed: false, created: false)),
            .submitBatch([
                SubmitResult(status: .ok, response: SubmitResponse(entry: entry(), previousRank: 2, changed: true, created: false)),
                SubmitResult(status: Status(.notFound, "board_id: no board \"x\""), response: nil),
                SubmitResult(status: Status(.invalidArgument), response: nil),
                SubmitResult(status: .ok, response: nil),
            ]),
            .submitBatch([]),
            .getRank(GetRankResponse(entry: entry(unicodePlayer), boardSize: 10)),
            .getRank(GetRankResponse(entry: WireEntry(playerID: "absent", score: 0), boardSize: 0)),
            .top(TopResponse(entries: edgeEntries, nextCursor: [1, 2, 3, 4], boardSize: .max)),
            .top(TopResponse(entries: [], nextCursor: [], boardSize: 0)),
            .around(EntriesResponse(entries: edgeEntries, boardSize: 77)),
            .around(EntriesResponse(entries: [], boardSize: 0)),
            .entries(EntriesResponse(entries: edgeEntries, missingPlayerIDs: ["x", "", unicodePlayer], boardSize: 5)),
            .entries(EntriesResponse(entries: [], missingPlayerIDs: [], boardSize: 0)),
            .count(CountResponse(count: 3, boardSize: .max)),
            .count(CountResponse(count: 0, boardSize: 0)),
            .listBoards(ListBoardsResponse(boards: boardInfos, more: true)),
            .listBoards(ListBoardsResponse(boards: [], more: false)),
            .deleteBoard(removedEntries: 0),
            .deleteBoard(removedEntries: .max),
            .erasePlayer(removedEntries: 0),
            .erasePlayer(removedEntries: .max),
            .removePlayer(entry(unicodePlayer, rank: 3)),
            .cancel(cancelled: true),
            .cancel(cancelled: false),
            .ping(payload: []),
            .ping(payload: hugeMetadata),
        ]
        results += boardInfos.map { .createBoard($0) }
        results += boardInfos.map { .describeBoard($0) }
        results += events.map { .event($0) }
        var envelopes = results.enumerated().map { index, result in
            ResponseEnvelope(callID: UInt64(index + 1), result: result)
        }
        envelopes += StatusCode.allCases.map { code in
            ResponseEnvelope.failure(callID: UInt64(code.rawValue) + 1_000, Status(code, "because \(code) — ✓"))
        }
        envelopes.append(ResponseEnvelope(callID: 0, status: Status(.ok), result: .hello(hello)))
        envelopes.append(ResponseEnvelope(callID: .max, status: nil, result: nil))
        envelopes.append(ResponseEnvelope(callID: 5, status: Status(.internal, ""), result: .count(CountResponse(count: 1, boardSize: 1))))
        return envelopes
    }()
}

// MARK: - Helpers

func encoded(_ envelope: RequestEnvelope) -> [UInt8] {
    var buffer = ByteBuffer()
    WireCodec.encodeRequest(envelope, into: &buffer)
    return Array(buffer.readableBytesView)
}

func encoded(_ envelope: ResponseEnvelope) -> [UInt8] {
    var buffer = ByteBuffer()
    WireCodec.encodeResponse(envelope, into: &buffer)
    return Array(buffer.readableBytesView)
}

func decodeRequest(_ bytes: [UInt8]) throws(WireError) -> RequestEnvelope {
    try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try WireCodec.decodeRequest(raw) } }.get()
}

func decodeResponse(_ bytes: [UInt8]) throws(WireError) -> ResponseEnvelope {
    try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try WireCodec.decodeResponse(raw) } }.get()
}

func decodeRequestRecoveringCallID(
    _ bytes: [UInt8], limits: RequestListLimits = .unlimited
) -> Result<RequestEnvelope, RejectedRequest> {
    bytes.withUnsafeBytes { raw in
        Result { () throws(RejectedRequest) in try WireCodec.decodeRequestRecoveringCallID(raw, limits: limits) }
    }
}

func peekCallID(_ bytes: [UInt8]) -> UInt64? {
    bytes.withUnsafeBytes { WireCodec.peekCallID($0) }
}

/// A generator for a fuzz-style test: seeded from HISCORE_TEST_SEED when set (to replay a
/// failure), else randomly; the seed is printed either way.
func seededGenerator(for test: String) -> SeededGenerator {
    let seed = ProcessInfo.processInfo.environment["HISCORE_TEST_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 0...UInt64.max)
    print("\(test) seed: \(seed) (replay with HISCORE_TEST_SEED=\(seed))")
    return SeededGenerator(seed: seed)
}

/// SplitMix64: a tiny seeded generator so a failing fuzz case can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Hand-written protobuf wire bytes, for messages the Swift types cannot express (unknown enum
/// numbers, oneofs left empty, hostile shapes).
struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func varintField(_ number: UInt64, _ value: UInt64) {
        varint(number << 3)
        varint(value)
    }

    /// An enum or int32 field; negative numbers are sign-extended to 10 bytes as protobuf does.
    mutating func int32Field(_ number: UInt64, _ value: Int32) {
        varintField(number, UInt64(bitPattern: Int64(value)))
    }

    mutating func bytesField(_ number: UInt64, _ value: [UInt8]) {
        varint(number << 3 | 2)
        varint(UInt64(value.count))
        bytes += value
    }

    mutating func messageField(_ number: UInt64, _ build: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        build(&nested)
        bytesField(number, nested.bytes)
    }

    static func message(_ build: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var writer = ProtobufWriter()
        build(&writer)
        return writer.bytes
    }
}

// Short names for parameterized test cases (the fixtures hold 64 KiB payloads).
extension RequestEnvelope: CustomTestStringConvertible {
    public var testDescription: String {
        "call \(callID): \(method.map { String(String(describing: $0).prefix(80)) } ?? "no method")"
    }
}

extension ResponseEnvelope: CustomTestStringConvertible {
    public var testDescription: String {
        "call \(callID) status \(status.map { "\($0.code)" } ?? "-"): \(result.map { String(String(describing: $0).prefix(80)) } ?? "no result")"
    }
}
