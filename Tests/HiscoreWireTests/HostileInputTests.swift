import HiscoreCore
import HiscoreWire
import Testing

@Suite("Decoding hostile bytes")
struct HostileInputTests {
    @Test("random garbage never crashes and fails cleanly")
    func randomGarbage() {
        var generator = seededGenerator(for: "HostileInputTests.randomGarbage")
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...64, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Any outcome but a crash is fine; errors must be the codec's own.
            _ = try? decodeRequest(bytes)
            _ = try? decodeResponse(bytes)
            _ = decodeRequestRecoveringCallID(bytes)
            _ = peekCallID(bytes)
        }
    }

    @Test("valid messages with random bytes flipped never crash")
    func mutatedValidMessages() {
        var generator = seededGenerator(for: "HostileInputTests.mutatedValidMessages")
        let requests = Fixtures.requests.map(encoded).filter { $0.count < 4096 }
        let responses = Fixtures.responses.map(encoded).filter { $0.count < 4096 }
        for _ in 0..<5_000 {
            var request = requests.randomElement(using: &generator) ?? []
            var response = responses.randomElement(using: &generator) ?? []
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                if !request.isEmpty { request[Int.random(in: 0..<request.count, using: &generator)] = .random(in: 0...255, using: &generator) }
                if !response.isEmpty { response[Int.random(in: 0..<response.count, using: &generator)] = .random(in: 0...255, using: &generator) }
            }
            _ = decodeRequestRecoveringCallID(request)
            _ = try? decodeResponse(response)
        }
    }

    @Test("every truncation of a valid message either fails as malformed or decodes")
    func truncated() throws {
        for envelope in Fixtures.requests where encoded(envelope).count < 2048 {
            let bytes = encoded(envelope)
            for length in 0..<bytes.count {
                do {
                    _ = try decodeRequest(Array(bytes.prefix(length)))
                } catch {
                    // A cut at a field boundary is a valid, shorter message; elsewhere it is malformed.
                    // (A cut inside a string can also leave invalid UTF-8.)
                    #expect(error.message.contains("not a valid") || error.message.contains("invalid UTF-8"))
                }
            }
        }
        let response = encoded(Fixtures.responses[2])
        for length in 0..<response.count {
            _ = try? decodeResponse(Array(response.prefix(length)))
        }
    }

    @Test("a request with no method decodes with method nil and its call id")
    func noMethod() throws {
        #expect(try decodeRequest([]) == RequestEnvelope(callID: 0, method: nil))
        let bytes = ProtobufWriter.message { $0.varintField(1, 77) }
        #expect(try decodeRequest(bytes) == RequestEnvelope(callID: 77, method: nil))
        // A method added by a newer protocol version (field 99) is an unknown field: also nil.
        let future = ProtobufWriter.message { request in
            request.varintField(1, 78)
            request.messageField(99) { $0.varintField(1, 1) }
        }
        #expect(try decodeRequest(future) == RequestEnvelope(callID: 78, method: nil))
    }

    @Test(
        "unknown enum values are named in the error",
        arguments: [
            (17, 2, 7, "score_order: unknown value 7"),
            (17, 3, 2, "subscore_order: unknown value 2"),
            (17, 4, 4, "write_operator: unknown value 4"),
            (17, 5, 9, "rank_mode: unknown value 9"),
            (17, 2, -1, "score_order: unknown value -1"),
            (12, 3, 4, "rank_mode: unknown value 4"),
            (13, 5, 9, "rank_mode: unknown value 9"),
            (14, 5, 100, "rank_mode: unknown value 100"),
            (15, 3, -5, "rank_mode: unknown value -5"),
            (22, 7, 9, "rank_mode: unknown value 9"),
        ] as [(UInt64, UInt64, Int32, String)])
    func unknownEnumValue(method: UInt64, field: UInt64, value: Int32, message: String) {
        let bytes = ProtobufWriter.message { request in
            request.varintField(1, 31)
            request.messageField(method) { body in
                if method == 17 {
                    body.messageField(1) { config in
                        config.bytesField(1, Array("b".utf8))
                        config.int32Field(field, value)
                    }
                } else {
                    body.bytesField(1, Array("b".utf8))
                    if method == 22 { body.varintField(3, 10) }  // subscribe needs a target
                    body.int32Field(field, value)
                }
            }
        }
        #expect(decodeRequestRecoveringCallID(bytes) == .failure(RejectedRequest(callID: 31, reason: .invalidField(message))))
        #expect(throws: WireError.invalidField(message)) { try decodeRequest(bytes) }
    }

    @Test("an unknown window change kind is refused", arguments: [0, 4, -3] as [Int32])
    func unknownWindowChangeKind(kind: Int32) {
        let bytes = ProtobufWriter.message { response in
            response.messageField(22) { event in
                event.messageField(4) { window in window.messageField(2) { $0.int32Field(1, kind) } }
            }
        }
        #expect(throws: WireError.invalidField("changes[0].kind: unknown value \(kind)")) { try decodeResponse(bytes) }
    }

    @Test("a subscription or event without its oneof is refused")
    func missingRequiredOneof() {
        let subscribe = ProtobufWriter.message { request in
            request.varintField(1, 5)
            request.messageField(22) { $0.bytesField(1, Array("b".utf8)) }
        }
        #expect(
            decodeRequestRecoveringCallID(subscribe)
                == .failure(RejectedRequest(callID: 5, reason: .invalidField("target: missing (set one of player_id, top, around, feed)"))))
        let createWithoutConfig = ProtobufWriter.message { $0.messageField(17) { _ in } }
        #expect(throws: WireError.invalidField("config: missing")) { try decodeRequest(createWithoutConfig) }
        let event = ProtobufWriter.message { $0.messageField(22) { $0.varintField(1, 3) } }
        #expect(throws: WireError.invalidField("change: missing (set one of player, window, feed)")) { try decodeResponse(event) }
    }

    /// Same-length stand-in for a string, replaced by invalid UTF-8 after encoding.
    static let marker = Array("~BAD~".utf8)
    static let invalidUTF8: [UInt8] = [0xC3, 0x28, 0xFF, 0x80, 0xED]

    static func poisoned(_ bytes: [UInt8], with replacement: [UInt8] = invalidUTF8) -> [UInt8] {
        var bytes = bytes
        var index = 0
        while index + marker.count <= bytes.count {
            if Array(bytes[index..<(index + marker.count)]) == marker {
                bytes.replaceSubrange(index..<(index + marker.count), with: replacement)
            }
            index += 1
        }
        return bytes
    }

    /// Same length as `marker`: a NUL inside, and one at the start (which reads as "" in C).
    static let withInnerNUL: [UInt8] = Array("p:1".utf8) + [0] + Array("x".utf8)
    static let withLeadingNUL: [UInt8] = [0] + Array("BAD~".utf8)

    @Test(
        "invalid UTF-8 in any request string field is refused, naming the field",
        arguments: [
            (RequestEnvelope(callID: 1, authToken: "~BAD~", method: .ping(payload: [])), "auth_token: invalid UTF-8"),
            (RequestEnvelope(callID: 2, method: .submit(SubmitRequest(boardID: "~BAD~", playerID: "p", score: 1))), "board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 3, method: .submit(SubmitRequest(boardID: "b", playerID: "~BAD~", score: 1))), "player_id: invalid UTF-8"),
            (
                RequestEnvelope(callID: 4, method: .submitBatch([SubmitRequest(boardID: "b", playerID: "ok", score: 1), SubmitRequest(boardID: "b", playerID: "~BAD~", score: 1)])),
                "submits[1].player_id: invalid UTF-8"
            ),
            (RequestEnvelope(callID: 5, method: .getRank(GetRankRequest(boardID: "b", playerID: "~BAD~"))), "player_id: invalid UTF-8"),
            (RequestEnvelope(callID: 6, method: .top(TopRequest(boardID: "~BAD~"))), "board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 7, method: .around(AroundRequest(boardID: "b", playerID: "~BAD~", before: 1, after: 1))), "player_id: invalid UTF-8"),
            (RequestEnvelope(callID: 8, method: .entries(EntriesRequest(boardID: "b", playerIDs: ["a", "b", "~BAD~"]))), "player_ids[2]: invalid UTF-8"),
            (RequestEnvelope(callID: 9, method: .count(CountRequest(boardID: "~BAD~"))), "board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 10, method: .createBoard(BoardConfig(id: "~BAD~"))), "board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 11, method: .describeBoard(boardID: "~BAD~")), "board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 12, method: .listBoards(ListBoardsRequest(afterBoardID: "~BAD~"))), "after_board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 13, method: .deleteBoard(boardID: "~BAD~")), "board_id: invalid UTF-8"),
            (RequestEnvelope(callID: 14, method: .removePlayer(RemovePlayerRequest(boardID: "b", playerID: "~BAD~"))), "player_id: invalid UTF-8"),
            (RequestEnvelope(callID: 15, method: .subscribe(SubscribeRequest(boardID: "b", target: .player("~BAD~")))), "player_id: invalid UTF-8"),
            (
                RequestEnvelope(callID: 16, method: .subscribe(SubscribeRequest(boardID: "b", target: .around(playerID: "~BAD~", before: 1, after: 1)))),
                "around.player_id: invalid UTF-8"
            ),
        ])
    func invalidUTF8InRequest(envelope: RequestEnvelope, message: String) {
        let bytes = Self.poisoned(encoded(envelope))
        #expect(bytes != encoded(envelope))
        #expect(
            decodeRequestRecoveringCallID(bytes)
                == .failure(RejectedRequest(callID: envelope.callID, reason: .invalidField(message))))
    }

    @Test(
        "a NUL byte in any request string field is refused, naming the field (a C string would end there)",
        arguments: [
            (RequestEnvelope(callID: 1, authToken: "~BAD~", method: .ping(payload: [])), "auth_token"),
            (RequestEnvelope(callID: 2, method: .submit(SubmitRequest(boardID: "~BAD~", playerID: "p", score: 1))), "board_id"),
            (RequestEnvelope(callID: 3, method: .submit(SubmitRequest(boardID: "b", playerID: "~BAD~", score: 1))), "player_id"),
            (
                RequestEnvelope(callID: 4, method: .submitBatch([SubmitRequest(boardID: "b", playerID: "ok", score: 1), SubmitRequest(boardID: "b", playerID: "~BAD~", score: 1)])),
                "submits[1].player_id"
            ),
            (RequestEnvelope(callID: 5, method: .getRank(GetRankRequest(boardID: "b", playerID: "~BAD~"))), "player_id"),
            (RequestEnvelope(callID: 8, method: .entries(EntriesRequest(boardID: "b", playerIDs: ["a", "b", "~BAD~"]))), "player_ids[2]"),
            (RequestEnvelope(callID: 10, method: .createBoard(BoardConfig(id: "~BAD~"))), "board_id"),
            (RequestEnvelope(callID: 14, method: .removePlayer(RemovePlayerRequest(boardID: "b", playerID: "~BAD~"))), "player_id"),
            (
                RequestEnvelope(callID: 16, method: .subscribe(SubscribeRequest(boardID: "b", target: .around(playerID: "~BAD~", before: 1, after: 1)))),
                "around.player_id"
            ),
        ])
    func nulInRequest(envelope: RequestEnvelope, field: String) {
        for replacement in [Self.withInnerNUL, Self.withLeadingNUL] {
            let bytes = Self.poisoned(encoded(envelope), with: replacement)
            #expect(bytes != encoded(envelope))
            #expect(
                decodeRequestRecoveringCallID(bytes)
                    == .failure(RejectedRequest(callID: envelope.callID, reason: .invalidField("\(field): contains a NUL byte"))))
        }
        // The same message with the marker left alone decodes: only the NUL is refused.
        #expect((try? decodeRequest(encoded(envelope))) == envelope)
    }

    @Test("a NUL byte in a response string is refused too; empty and absent strings decode as \"\"")
    func nulInResponse() throws {
        let top = ResponseEnvelope(callID: 3, result: .top(TopResponse(entries: [Fixtures.entry(), Fixtures.entry("~BAD~")], nextCursor: [], boardSize: 2)))
        #expect(throws: WireError.invalidField("entries[1].player_id: contains a NUL byte")) {
            try decodeResponse(Self.poisoned(encoded(top), with: Self.withInnerNUL))
        }
        // describe_board's board_id sent explicitly empty (tag, length 0), and left out.
        let explicitEmpty = ProtobufWriter.message { request in
            request.varintField(1, 7)
            request.messageField(18) { $0.bytesField(1, []) }
        }
        let absent = ProtobufWriter.message { request in
            request.varintField(1, 7)
            request.messageField(18) { _ in }
        }
        for bytes in [explicitEmpty, absent] {
            #expect(try decodeRequest(bytes).method == .describeBoard(boardID: ""))
        }
    }

    @Test("lists over the receiver's limits are refused before their elements are converted")
    func listLimits() {
        let limits = RequestListLimits(maxBatchSubmits: 3, maxPlayerIDs: 2)
        let batch = { (count: Int) in
            RequestEnvelope(callID: 21, method: .submitBatch((0..<count).map { SubmitRequest(boardID: "b", playerID: "p\($0)", score: 1) }))
        }
        #expect((try? decodeRequestRecoveringCallID(encoded(batch(3)), limits: limits).get()) == batch(3))
        let tooMany = decodeRequestRecoveringCallID(encoded(batch(4)), limits: limits)
        #expect(tooMany == .failure(RejectedRequest(callID: 21, reason: .tooManyElements("4 submits in a batch; at most 3 allowed (max_batch_submits)"))))
        if case .failure(let rejected) = tooMany {
            #expect(rejected.status.code == .resourceExhausted)
        }
        // The count is checked first: an element that would fail to convert is never reached.
        let poisonedBatch = Self.poisoned(
            encoded(RequestEnvelope(callID: 22, method: .submitBatch((0..<4).map { _ in SubmitRequest(boardID: "b", playerID: "~BAD~", score: 1) }))))
        #expect(
            decodeRequestRecoveringCallID(poisonedBatch, limits: limits)
                == .failure(RejectedRequest(callID: 22, reason: .tooManyElements("4 submits in a batch; at most 3 allowed (max_batch_submits)"))))
        let ids = RequestEnvelope(callID: 23, method: .entries(EntriesRequest(boardID: "b", playerIDs: ["a", "b", "c"])))
        #expect(
            decodeRequestRecoveringCallID(encoded(ids), limits: limits)
                == .failure(RejectedRequest(callID: 23, reason: .tooManyElements("3 player ids; at most 2 allowed (max_players_per_query)"))))
        #expect((try? decodeRequestRecoveringCallID(encoded(ids)).get()) == ids)
    }

    @Test(
        "invalid UTF-8 in any response string field is refused, naming the field",
        arguments: [
            (ResponseEnvelope.failure(callID: 1, Status(.internal, "~BAD~")), "message: invalid UTF-8"),
            (ResponseEnvelope(callID: 2, result: .removePlayer(WireEntry(playerID: "~BAD~", score: 1))), "player_id: invalid UTF-8"),
            (
                ResponseEnvelope(callID: 3, result: .top(TopResponse(entries: [Fixtures.entry(), Fixtures.entry("~BAD~")], nextCursor: [], boardSize: 2))),
                "entries[1].player_id: invalid UTF-8"
            ),
            (
                ResponseEnvelope(callID: 4, result: .entries(EntriesResponse(entries: [], missingPlayerIDs: ["~BAD~"], boardSize: 0))),
                "missing_player_ids[0]: invalid UTF-8"
            ),
            (
                ResponseEnvelope(callID: 5, result: .hello(ServerHello(protocolVersion: 1, serverVersion: "~BAD~", maxFrameBytes: 1, maxInflightCalls: 1, maxBatchSubmits: 1, maxPageEntries: 1, maxPlayersPerQuery: 1, maxSubscriptions: 1, maxMetadataBytes: 1))),
                "server_version: invalid UTF-8"
            ),
            (ResponseEnvelope(callID: 6, result: .describeBoard(BoardInfo(config: BoardConfig(id: "~BAD~"), size: 0, version: 0))), "board_id: invalid UTF-8"),
            (
                ResponseEnvelope(callID: 7, result: .submitBatch([SubmitResult(status: Status(.notFound, "~BAD~"), response: nil)])),
                "results[0].message: invalid UTF-8"
            ),
            (
                ResponseEnvelope(callID: 8, result: .event(RankEvent(boardVersion: 1, snapshot: false, change: .feed([FeedItem(entry: Fixtures.entry("~BAD~"), previousRank: 0, created: true, removed: false, boardVersion: 1)])))),
                "items[0].player_id: invalid UTF-8"
            ),
        ])
    func invalidUTF8InResponse(envelope: ResponseEnvelope, message: String) {
        #expect(throws: WireError.invalidField(message)) { try decodeResponse(Self.poisoned(encoded(envelope))) }
    }

    @Test("overlong encodings and UTF-16 surrogates are invalid UTF-8")
    func subtleInvalidUTF8() {
        for invalid: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            let bytes = ProtobufWriter.message { request in
                request.varintField(1, 2)
                request.messageField(18) { $0.bytesField(1, invalid) }
            }
            #expect(decodeRequestRecoveringCallID(bytes) == .failure(RejectedRequest(callID: 2, reason: .invalidField("board_id: invalid UTF-8"))))
        }
    }

    @Test("huge repeated counts decode within the budget or are refused, never blow up")
    func hugeRepeatedCounts() throws {
        // 100,000 player ids: a big but ordinary shape, within the budget.
        let manyIDs = ProtobufWriter.message { request in
            request.messageField(15) { body in
                for index in 0..<100_000 { body.bytesField(2, Array("player-\(index)".utf8)) }
            }
        }
        let decoded = try decodeRequest(manyIDs)
        guard case .entries(let entries) = decoded.method else {
            Issue.record("expected entries, got \(String(describing: decoded.method))")
            return
        }
        #expect(entries.playerIDs.count == 100_000)
        #expect(entries.playerIDs.last == "player-99999")

        // 500,000 empty submits: each 2-byte item would become an ~80-byte C struct (~44 MB).
        let manySubmits = ProtobufWriter.message { request in
            request.varintField(1, 12)
            request.messageField(11) { body in
                for _ in 0..<500_000 { body.bytesField(1, []) }
            }
        }
        let result = decodeRequestRecoveringCallID(manySubmits)
        guard case .failure(let rejection) = result else {
            Issue.record("expected a refusal")
            return
        }
        #expect(rejection.callID == 12)
        #expect(rejection.reason.message.contains("bytes of memory once decoded"))

        // A length prefix claiming far more than the payload holds.
        let lying = ProtobufWriter.message { request in
            request.varintField(1, 13)
            request.varint(11 << 3 | 2)
            request.varint(UInt64(Int32.max))
            request.bytes += [0x0a, 0x00]
        }
        #expect(decodeRequestRecoveringCallID(lying) == .failure(RejectedRequest(callID: 13, reason: .malformed("not a valid hiscore.v1.Request (truncated or corrupt protobuf)"))))
    }

    @Test("the errors carry INVALID_ARGUMENT statuses with the field named")
    func status() {
        let status = WireError.invalidField("player_id: invalid UTF-8").status
        #expect(status.code == .invalidArgument)
        #expect(status.message.contains("player_id: invalid UTF-8"))
    }
}
