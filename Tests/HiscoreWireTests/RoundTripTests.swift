import HiscoreCore
import HiscoreWire
import NIOCore
import Testing

@Suite("Swift -> protobuf -> Swift round trips")
struct RoundTripTests {
    @Test("every request method", arguments: Fixtures.requests)
    func request(_ envelope: RequestEnvelope) throws {
        #expect(try decodeRequest(encoded(envelope)) == envelope)
    }

    @Test("every response result and event shape", arguments: Fixtures.responses)
    func response(_ envelope: ResponseEnvelope) throws {
        #expect(try decodeResponse(encoded(envelope)) == envelope)
    }

    @Test("the fixtures name every request method and response result")
    func fixturesCoverEveryCase() {
        let methods = Set(Fixtures.requests.compactMap { $0.method.map(Self.caseName) })
        #expect(methods.count == 16)
        let results = Set(Fixtures.responses.compactMap { $0.result.map(Self.caseName) })
        #expect(results.count == 17)
    }

    @Test("a top packed once encodes byte for byte as the top itself, and reads back as it",
          arguments: [0, 1, 10, 300])
    func packedTop(entryCount: Int) throws {
        let top = TopResponse(
            entries: (0..<entryCount).map {
                WireEntry(playerID: "p:\($0)", score: Int64($0) * 1_000 - 7, subscore: -Int64($0), rank: UInt64($0 + 1),
                          metadata: $0 % 3 == 0 ? [] : Array(repeating: UInt8($0 & 0xff), count: $0 % 40), reachedAtMicros: 1_700_000_000_000_000 + Int64($0))
            },
            nextCursor: entryCount == 0 ? [] : Array(repeating: 0xAB, count: 24), boardSize: 1_000_000)
        let packed = PackedResult.top(top)
        for (callID, status) in [(UInt64(1), nil), (UInt64.max, Status(.ok, "")), (42, nil)] as [(UInt64, Status?)] {
            let direct = ResponseEnvelope(callID: callID, status: status, result: .top(top))
            let viaPacked = ResponseEnvelope(callID: callID, status: status, result: .packed(packed))
            #expect(encoded(viaPacked) == encoded(direct), "call \(callID)")
            #expect(try decodeResponse(encoded(viaPacked)) == direct)
        }
        #expect(packed.encodedByteCount == encoded(ResponseEnvelope(callID: 0, status: nil, result: .top(top))).count)
    }

    @Test("a stream event packed once encodes byte for byte as the event itself, and reads back as it")
    func packedEvent() throws {
        for event in Fixtures.events {
            let packed = PackedResult.event(event)
            for callID in [UInt64(1), 9, .max] {
                let direct = ResponseEnvelope(callID: callID, status: nil, result: .event(event))
                let viaPacked = ResponseEnvelope(callID: callID, status: nil, result: .packed(packed))
                #expect(encoded(viaPacked) == encoded(direct), "call \(callID)")
                #expect(try decodeResponse(encoded(viaPacked)) == direct)
            }
            #expect(packed.encodedByteCount == encoded(ResponseEnvelope(callID: 0, status: nil, result: .event(event))).count)
        }
    }

    @Test("a top in the engine's form encodes byte for byte as the top itself, and reads back as it",
          arguments: [0, 1, 10, 300])
    func rankedTop(entryCount: Int) throws {
        let entries = (0..<entryCount).map {
            LeaderboardEntry(
                playerID: $0 % 7 == 0 ? Fixtures.unicodePlayer + "\($0)" : "p:\($0)", score: Int64($0) * 1_000 - 7,
                subscore: $0 % 2 == 0 ? .min : -Int64($0),
                metadata: $0 % 3 == 0 ? [] : Array(repeating: UInt8($0 & 0xff), count: $0 % 40),
                sequence: $0 % 5 == 0 ? .max : 1_700_000_000_000_000 + UInt64($0), key: .min)
        }
        let ranked = RankedTop(
            entries: entries, ranks: (0..<entryCount).map { UInt64($0 / 2 + 1) },
            nextCursor: entryCount == 0 ? [] : Array(repeating: 0xCD, count: 24), boardSize: UInt64(entryCount))
        #expect(ranked.response.entries.count == entryCount)
        for (callID, status) in [(UInt64(1), nil), (UInt64.max, Status(.ok, "")), (42, nil)] as [(UInt64, Status?)] {
            let direct = ResponseEnvelope(callID: callID, status: status, result: .top(ranked.response))
            let engineForm = ResponseEnvelope(callID: callID, status: status, result: .rankedTop(ranked))
            #expect(encoded(engineForm) == encoded(direct), "call \(callID)")
            #expect(try decodeResponse(encoded(engineForm)) == direct)
        }
    }

    @Test("the bytes are standard protobuf (golden encodings)")
    func golden() throws {
        // call_id 1 (field 1 varint), ping (field 24, length-delimited) with payload [0xAB].
        let ping = RequestEnvelope(callID: 1, method: .ping(payload: [0xAB]))
        #expect(encoded(ping) == [0x08, 0x01, 0xC2, 0x01, 0x03, 0x0A, 0x01, 0xAB])
        // call_id 2, status {code NOT_FOUND(5), message "x"}; proto3 omits zero/empty fields.
        let failure = ResponseEnvelope.failure(callID: 2, Status(.notFound, "x"))
        #expect(encoded(failure) == [0x08, 0x02, 0x12, 0x05, 0x08, 0x05, 0x12, 0x01, 0x78])
        // Negative int64 scores are 10-byte varints (int64, not sint64).
        let submit = RequestEnvelope(callID: 0, method: .submit(SubmitRequest(boardID: "", playerID: "", score: -1)))
        #expect(encoded(submit) == [0x52, 0x0B, 0x18] + Array(repeating: 0xFF, count: 9) + [0x01])
        #expect(try decodeRequest(encoded(submit)) == submit)
    }

    @Test("encoding appends to what the buffer already holds")
    func encodeAppends() throws {
        var buffer = ByteBuffer(bytes: [0xEE, 0xEE])
        let envelope = Fixtures.requests[0]
        WireCodec.encodeRequest(envelope, into: &buffer)
        #expect(buffer.readInteger(as: UInt16.self) == 0xEEEE)
        #expect(try WireCodec.decodeRequest(buffer) == envelope)
    }

    @Test("one caller-owned arena serves many calls, big and small")
    func callerOwnedArena() throws {
        let arena = WireArena(initialCapacity: 256)
        for envelope in Fixtures.responses + Fixtures.responses.reversed() {
            var buffer = ByteBuffer()
            WireCodec.encodeResponse(envelope, into: &buffer, arena: arena)
            let decoded = try buffer.withUnsafeReadableBytes { bytes in
                Result { () throws(WireError) in try WireCodec.decodeResponse(bytes, arena: arena) }
            }.get()
            #expect(decoded == envelope)
        }
    }

    @Test("absent oneofs and sub-messages read as their documented defaults")
    func defaults() throws {
        // TopRequest without a start: from offset 0.
        let top = ProtobufWriter.message { request in
            request.varintField(1, 3)
            request.messageField(13) { $0.bytesField(1, Array("b".utf8)) }
        }
        #expect(try decodeRequest(top).method == .top(TopRequest(boardID: "b", limit: 0, start: .offset(0))))

        // BoardConfig with DEFAULT rank mode and no limits: ordinal, HiscoreCore's default limits.
        let create = ProtobufWriter.message { request in
            request.messageField(17) { body in body.messageField(1) { $0.bytesField(1, Array("b".utf8)) } }
        }
        #expect(try decodeRequest(create).method == .createBoard(BoardConfig(id: "b", rankMode: .ordinal, limits: BoardLimits())))

        // max_metadata_bytes 0 = the default (256).
        let zeroMetadata = ProtobufWriter.message { request in
            request.messageField(17) { body in
                body.messageField(1) { config in
                    config.bytesField(1, Array("b".utf8))
                    config.messageField(6) { $0.varintField(1, 5) }
                }
            }
        }
        #expect(
            try decodeRequest(zeroMetadata).method
                == .createBoard(BoardConfig(id: "b", limits: BoardLimits(maxEntries: 5, maxMetadataBytes: 256))))

        // Submit without the metadata oneof: keep the stored metadata (nil).
        let submit = ProtobufWriter.message { request in
            request.messageField(10) { $0.varintField(3, 9) }
        }
        #expect(try decodeRequest(submit).method == .submit(SubmitRequest(boardID: "", playerID: "", score: 9, metadata: nil)))

        // Responses: no status is nil; a batch item without status is OK; an absent entry is empty.
        let response = ProtobufWriter.message { response in
            response.varintField(1, 8)
            response.messageField(11) { batch in batch.messageField(1) { $0.messageField(2) { _ in } } }
        }
        #expect(
            try decodeResponse(response)
                == ResponseEnvelope(
                    callID: 8,
                    result: .submitBatch([
                        SubmitResult(
                            status: .ok,
                            response: SubmitResponse(
                                entry: WireEntry(playerID: "", score: 0), previousRank: 0, changed: false, created: false))
                    ])))
    }

    @Test("an unknown status code reads as UNKNOWN")
    func unknownStatusCode() throws {
        let bytes = ProtobufWriter.message { response in
            response.varintField(1, 4)
            response.messageField(2) { status in
                status.varintField(1, 99)
                status.bytesField(2, Array("from the future".utf8))
            }
        }
        #expect(try decodeResponse(bytes) == .failure(callID: 4, Status(.unknown, "from the future")))
    }

    private static func caseName<T>(_ value: T) -> String {
        String(String(describing: value).prefix { $0 != "(" })
    }
}
