import HiscoreWire
import NIOCore

// Hiscore's protocol for the load generator. Requests are written field by field straight into
// the outbound buffer (no envelope values, no protobuf-c pack, no allocation per request); the
// bytes are checked once at start-up against HiscoreWire's decoder (`LoadHiscoreEncodingCheck`).
// Replies are scanned, not decoded: call id, status code, which result, and its shape (entry
// present, number of entries, per-item batch statuses). Every `verifyEvery`-th reply is also
// fully decoded with `WireCodec.decodeResponse` and checked against what was asked.

/// Protobuf field tags (field number << 3 | wire type) of the messages the generator uses.
enum HiscoreTag {
    static let callID: UInt8 = 0x08  // Request/Response.call_id = 1, varint
    static let submit: UInt8 = 0x52  // Request.submit = 10
    static let submitBatch: UInt8 = 0x5A  // Request.submit_batch = 11
    static let getRank: UInt8 = 0x62  // Request.get_rank = 12
    static let top: UInt8 = 0x6A  // Request.top = 13
    static let around: UInt8 = 0x72  // Request.around = 14
    static let boardID: UInt8 = 0x0A  // *.board_id = 1
    static let playerID: UInt8 = 0x12  // *.player_id = 2
    static let score: UInt8 = 0x18  // SubmitRequest.score = 3
    static let skipRanks: UInt8 = 0x30  // SubmitRequest.skip_ranks = 6, varint
    static let topLimit: UInt8 = 0x10  // TopRequest.limit = 2
    static let topOffset: UInt8 = 0x18  // TopRequest.offset = 3
    static let aroundBefore: UInt8 = 0x18  // AroundRequest.before = 3
    static let aroundAfter: UInt8 = 0x20  // AroundRequest.after = 4
    static let batchItem: UInt8 = 0x0A  // SubmitBatchRequest.submits = 1
}

/// Response.result field numbers.
enum HiscoreResultField {
    static let hello = 9
    static let submit = 10
    static let submitBatch = 11
    static let getRank = 12
    static let top = 13
    static let around = 14

    static func expected(for kind: LoadOpKind) -> Int {
        switch kind {
        case .submit, .submitUnranked: submit
        case .rank: getRank
        case .top10, .page: top
        case .around: around
        case .preloadBatch: submitBatch
        }
    }
}

/// A bounds-checked protobuf reader over a reply's bytes; never traps.
struct LoadProtoReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = end ?? bytes.count
    }

    var atEnd: Bool { offset >= end }

    @inline(__always)
    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end, shift < 70 {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    /// One field: its number, wire type, and for length-delimited fields the body range (the
    /// reader is moved past the field). nil on malformed input.
    @inline(__always)
    mutating func field() -> (number: Int, wireType: Int, value: UInt64, body: Range<Int>)? {
        guard let key = varint() else { return nil }
        let number = Int(key >> 3)
        let wireType = Int(key & 7)
        switch wireType {
        case 0:
            guard let value = varint() else { return nil }
            return (number, 0, value, offset..<offset)
        case 1:
            guard end - offset >= 8 else { return nil }
            offset += 8
            return (number, 1, 0, offset..<offset)
        case 2:
            guard let length = varint(), length <= UInt64(end - offset) else { return nil }
            let start = offset
            offset += Int(length)
            return (number, 2, length, start..<offset)
        case 5:
            guard end - offset >= 4 else { return nil }
            offset += 4
            return (number, 5, 0, offset..<offset)
        default:
            return nil
        }
    }
}

struct HiscoreLoadWire: LoadWire {
    let options: LoadWireOptions
    private(set) var stats = LoadWireStats()
    private var repliesUntilVerify: Int
    /// Replies larger than this are refused (a runaway server); the generator's own bound.
    private let maxFrameBytes = 16 << 20

    init(options: LoadWireOptions) {
        self.options = options
        // The first reply of every connection is verified, then every `verifyEvery`-th.
        self.repliesUntilVerify = 1
    }

    func writePreface(into buffer: inout ByteBuffer) {
        buffer.writeBytes(ConnectionPreface.bytes)
    }

    // MARK: Requests

    /// board_id "lb" (4 bytes with tag and length).
    @inline(__always)
    private static func writeBoard(into body: inout ByteBuffer) {
        body.writeInteger(HiscoreTag.boardID)
        body.writeInteger(UInt8(2))
        body.writeInteger(UInt8(ascii: "l"))
        body.writeInteger(UInt8(ascii: "b"))
    }

    @inline(__always)
    private static func writePlayer(_ index: Int, into body: inout ByteBuffer) {
        body.writeInteger(HiscoreTag.playerID)
        body.writeInteger(UInt8(LoadPlayerID.length))
        LoadPlayerID.write(index, into: &body)
    }

    /// Length of a SubmitRequest{board "lb", player, score[, skip_ranks true]} body.
    @inline(__always)
    private static func submitBodyLength(score: Int, skipRanks: Bool = false) -> Int {
        4 + 2 + LoadPlayerID.length + 1 + Varint.byteCount(UInt64(score)) + (skipRanks ? 2 : 0)
    }

    @inline(__always)
    private static func writeSubmitBody(player: Int, score: Int, skipRanks: Bool = false, into body: inout ByteBuffer) {
        writeBoard(into: &body)
        writePlayer(player, into: &body)
        body.writeInteger(HiscoreTag.score)
        Varint.write(UInt64(score), into: &body)
        if skipRanks {
            body.writeInteger(HiscoreTag.skipRanks)
            body.writeInteger(UInt8(1))
        }
    }

    mutating func encode(_ op: LoadOp, slot: Int, slots: inout [LoadSlot], into buffer: inout ByteBuffer) {
        stats.commands += 1
        let seed = options.seed
        let players = options.players
        FrameEncoding.writeFrame(into: &buffer) { body in
            body.writeInteger(HiscoreTag.callID)
            Varint.write(UInt64(slot + 1), into: &body)
            switch op.kind {
            case .submit, .submitUnranked:
                let skipRanks = op.kind == .submitUnranked
                body.writeInteger(HiscoreTag.submit)
                Varint.write(UInt64(Self.submitBodyLength(score: op.score, skipRanks: skipRanks)), into: &body)
                Self.writeSubmitBody(player: op.player, score: op.score, skipRanks: skipRanks, into: &body)
            case .rank:
                body.writeInteger(HiscoreTag.getRank)
                body.writeInteger(UInt8(4 + 2 + LoadPlayerID.length))
                Self.writeBoard(into: &body)
                Self.writePlayer(op.player, into: &body)
            case .top10, .page:
                let limit = op.kind == .top10 ? LoadShape.top10Limit : LoadShape.pageLimit
                let offset = op.kind == .top10 ? 0 : LoadShape.pageOffset
                body.writeInteger(HiscoreTag.top)
                Varint.write(
                    UInt64(4 + 1 + Varint.byteCount(UInt64(limit)) + 1 + Varint.byteCount(UInt64(offset))),
                    into: &body)
                Self.writeBoard(into: &body)
                body.writeInteger(HiscoreTag.topLimit)
                Varint.write(UInt64(limit), into: &body)
                body.writeInteger(HiscoreTag.topOffset)
                Varint.write(UInt64(offset), into: &body)
            case .around:
                body.writeInteger(HiscoreTag.around)
                body.writeInteger(UInt8(4 + 2 + LoadPlayerID.length + 4))
                Self.writeBoard(into: &body)
                Self.writePlayer(op.player, into: &body)
                body.writeInteger(HiscoreTag.aroundBefore)
                body.writeInteger(UInt8(LoadShape.aroundSide))
                body.writeInteger(HiscoreTag.aroundAfter)
                body.writeInteger(UInt8(LoadShape.aroundSide))
            case .preloadBatch:
                var total = 0
                for index in op.player..<(op.player + op.score) {
                    let score = LoadRandom.preloadScore(seed: seed, index: index, players: players)
                    let item = Self.submitBodyLength(score: score)
                    total += 1 + Varint.byteCount(UInt64(item)) + item
                }
                body.writeInteger(HiscoreTag.submitBatch)
                Varint.write(UInt64(total), into: &body)
                for index in op.player..<(op.player + op.score) {
                    let score = LoadRandom.preloadScore(seed: seed, index: index, players: players)
                    body.writeInteger(HiscoreTag.batchItem)
                    Varint.write(UInt64(Self.submitBodyLength(score: score)), into: &body)
                    Self.writeSubmitBody(player: index, score: score, into: &body)
                }
            }
        }
    }

    // MARK: Replies

    mutating func nextReply(
        from inbound: inout ByteBuffer, slots: inout [LoadSlot], outbound: inout ByteBuffer,
        errors: inout LoadErrorCounts
    ) throws(LoadProtocolError) -> LoadReply {
        let start = inbound.readerIndex
        guard
            let flag = inbound.getInteger(at: start, as: UInt8.self),
            let declared = inbound.getInteger(at: start + 1, as: UInt32.self)
        else { return .incomplete }
        guard flag == 0 else { throw LoadProtocolError("reply frame with flag byte \(flag)") }
        let length = Int(declared)
        guard length <= maxFrameBytes else { throw LoadProtocolError("reply frame of \(length) bytes") }
        guard inbound.readableBytes >= 5 + length else { return .incomplete }
        let result = inbound.withUnsafeReadableBytes { raw in
            Result { () throws(LoadProtocolError) in
                try self.evaluate(
                    UnsafeRawBufferPointer(rebasing: raw[5..<(5 + length)]), slots: &slots, errors: &errors)
            }
        }
        inbound.moveReaderIndex(forwardBy: 5 + length)
        return try result.get()
    }

    private mutating func evaluate(
        _ body: UnsafeRawBufferPointer, slots: inout [LoadSlot], errors: inout LoadErrorCounts
    ) throws(LoadProtocolError) -> LoadReply {
        let scan = try LoadResponseScan(body)
        let (callID, statusCode, statusMessage, resultField, resultBody) =
            (scan.callID, scan.statusCode, scan.statusMessage, scan.resultField, scan.resultBody)
        if callID == 0 {
            if resultField == HiscoreResultField.hello, statusCode == 0 { return .ignored }
            let message = statusMessage.map { String(decoding: UnsafeRawBufferPointer(rebasing: body[$0]), as: UTF8.self) } ?? ""
            throw LoadProtocolError("connection-level error \(Self.codeName(statusCode)): \(message)")
        }
        let slot = Int(callID) - 1
        guard slot >= 0, slot < slots.count, slots[slot].startNanos != 0 else {
            throw LoadProtocolError("reply for call id \(callID), which is not in flight")
        }
        let kind = slots[slot].kind
        if statusCode != 0 {
            errors.add("\(kind.name): \(Self.codeName(statusCode))")
            return .done(slot: slot, failures: kind == .preloadBatch ? slots[slot].aux : 1)
        }
        guard resultField == HiscoreResultField.expected(for: kind) else {
            errors.add("\(kind.name): result field \(resultField), expected \(HiscoreResultField.expected(for: kind))")
            return .done(slot: slot, failures: 1)
        }
        var failures = 0
        var inner = LoadProtoReader(body, from: resultBody.lowerBound, to: resultBody.upperBound)
        switch kind {
        case .submit, .submitUnranked, .rank:
            var hasEntry = false
            while !inner.atEnd {
                guard let field = inner.field() else { throw LoadProtocolError("undecodable \(kind.name) result") }
                if field.number == 1, field.wireType == 2 { hasEntry = true }
                if kind != .rank, field.number == 3, field.wireType == 0, field.value != 0 {
                    stats.submitChanged += 1
                    slots[slot].changed = true
                }
            }
            if kind != .rank { stats.submitReplies += 1 }
            if !hasEntry {
                errors.add("\(kind.name): OK reply without an entry")
                failures = 1
            }
        case .top10, .page, .around:
            var entries = 0
            while !inner.atEnd {
                guard let field = inner.field() else { throw LoadProtocolError("undecodable \(kind.name) result") }
                if field.number == 1, field.wireType == 2 { entries += 1 }
            }
            let expected: ClosedRange<Int> =
                switch kind {
                case .top10: LoadShape.top10Limit...LoadShape.top10Limit
                case .page: LoadShape.pageLimit...LoadShape.pageLimit
                default: 1...(2 * LoadShape.aroundSide + 1)
                }
            if !expected.contains(entries) {
                errors.add("\(kind.name): \(entries) entries, expected \(expected)")
                failures = 1
            }
        case .preloadBatch:
            var results = 0
            while !inner.atEnd {
                guard let field = inner.field() else { throw LoadProtocolError("undecodable submit_batch result") }
                guard field.number == 1, field.wireType == 2 else { continue }
                results += 1
                var item = LoadProtoReader(body, from: field.body.lowerBound, to: field.body.upperBound)
                while !item.atEnd {
                    guard let itemField = item.field() else { throw LoadProtocolError("undecodable SubmitResult") }
                    guard itemField.number == 1, itemField.wireType == 2 else { continue }
                    var status = LoadProtoReader(body, from: itemField.body.lowerBound, to: itemField.body.upperBound)
                    while !status.atEnd {
                        guard let s = status.field() else { throw LoadProtocolError("undecodable item Status") }
                        if s.number == 1, s.wireType == 0, s.value != 0 {
                            errors.add("preload item: \(Self.codeName(s.value))")
                            failures += 1
                        }
                    }
                }
            }
            if results != slots[slot].aux {
                errors.add("preload: \(results) batch results for \(slots[slot].aux) items")
                failures = max(failures, abs(slots[slot].aux - results))
            }
        }
        if options.verifyEvery > 0 {
            repliesUntilVerify -= 1
            if repliesUntilVerify <= 0 {
                repliesUntilVerify = options.verifyEvery
                failures += deepVerify(body, slot: slots[slot], errors: &errors)
            }
        }
        return .done(slot: slot, failures: failures)
    }

    /// Decodes the whole reply with HiscoreWire and checks it against the request. Returns 1 when
    /// it found a problem the scan did not already count.
    private mutating func deepVerify(
        _ body: UnsafeRawBufferPointer, slot: LoadSlot, errors: inout LoadErrorCounts
    ) -> Int {
        stats.deepVerified += 1
        let envelope: ResponseEnvelope
        do {
            envelope = try WireCodec.decodeResponse(body)
        } catch {
            errors.add("verify \(slot.kind.name): HiscoreWire cannot decode the reply: \(error)")
            return 1
        }
        var problem: String? = nil
        let player = LoadPlayerID.string(slot.player)
        func ranksConsecutive(_ entries: [WireEntry], from first: UInt64?) -> Bool {
            guard let start = entries.first?.rank else { return false }
            if let first, start != first { return false }
            for (offset, entry) in entries.enumerated() {
                if entry.rank != start + UInt64(offset) { return false }
                if offset > 0, entry.score > entries[offset - 1].score { return false }
            }
            return true
        }
        switch (slot.kind, envelope.result) {
        case (.submit, .submit(let response)?):
            if response.entry.playerID != player { problem = "submit answered for \(response.entry.playerID), not \(player)" }
            else if response.entry.score < Int64(slot.aux) { problem = "keep-best score \(response.entry.score) below the submitted \(slot.aux)" }
            else if response.entry.rank == 0 { problem = "submit reply without a rank" }
        case (.submitUnranked, .submit(let response)?):
            if response.entry.playerID != player { problem = "submit answered for \(response.entry.playerID), not \(player)" }
            else if response.entry.score < Int64(slot.aux) { problem = "keep-best score \(response.entry.score) below the submitted \(slot.aux)" }
            else if response.entry.rank != 0 || response.previousRank != 0 { problem = "skip_ranks submit reply with a rank" }
        case (.rank, .getRank(let response)?):
            if response.entry.playerID != player { problem = "rank answered for \(response.entry.playerID), not \(player)" }
            else if response.entry.rank < 1 || response.entry.rank > response.boardSize { problem = "rank \(response.entry.rank) outside 1...\(response.boardSize)" }
        case (.top10, .top(let response)?):
            if response.entries.count != LoadShape.top10Limit || !ranksConsecutive(response.entries, from: 1) {
                problem = "top10 is not ranks 1-10 in score order"
            }
        case (.page, .top(let response)?):
            if response.entries.count != LoadShape.pageLimit
                || !ranksConsecutive(response.entries, from: UInt64(LoadShape.pageOffset + 1))
            {
                problem = "page is not ranks \(LoadShape.pageOffset + 1)-\(LoadShape.pageOffset + LoadShape.pageLimit) in score order"
            }
        case (.around, .around(let response)?):
            if !response.entries.contains(where: { $0.playerID == player }) { problem = "around does not contain \(player)" }
            else if !ranksConsecutive(response.entries, from: nil) { problem = "around ranks are not consecutive" }
        case (.preloadBatch, .submitBatch(let results)?):
            if results.count != slot.aux || results.contains(where: { $0.status.code != .ok }) {
                problem = "batch results do not match"
            }
        default:
            problem = "unexpected result \(String(describing: envelope.result).prefix(60))"
        }
        if let problem {
            errors.add("verify \(slot.kind.name): \(problem)")
            return 1
        }
        return 0
    }

    static func codeName(_ code: UInt64) -> String {
        if let known = StatusCode(rawValue: UInt32(truncatingIfNeeded: code)) { return known.description }
        return "status \(code)"
    }
}

/// Start-up self-check: the hand-written request bytes decode, with HiscoreWire's own decoder, to
/// exactly the envelopes the generator means to send.
enum LoadHiscoreEncodingCheck {
    static func run(players: Int, seed: UInt64) throws {
        var wire = HiscoreLoadWire(options: LoadWireOptions(players: players, seed: seed, verifyEvery: 0))
        var slots = [LoadSlot](repeating: LoadSlot(), count: 8)
        let player = min(players - 1, 123_456)
        let batchFirst = 0
        let batchCount = min(players, 3)
        let cases: [(LoadOp, RequestMethod)] = [
            (LoadOp(kind: .submit, player: player, score: 987_654),
             .submit(SubmitRequest(boardID: loadBoardID, playerID: LoadPlayerID.string(player), score: 987_654))),
            (LoadOp(kind: .submit, player: 0, score: 0),
             .submit(SubmitRequest(boardID: loadBoardID, playerID: LoadPlayerID.string(0), score: 0))),
            (LoadOp(kind: .submitUnranked, player: player, score: 987_654),
             .submit(SubmitRequest(boardID: loadBoardID, playerID: LoadPlayerID.string(player), score: 987_654, skipRanks: true))),
            (LoadOp(kind: .rank, player: player, score: 0),
             .getRank(GetRankRequest(boardID: loadBoardID, playerID: LoadPlayerID.string(player)))),
            (LoadOp(kind: .top10, player: 0, score: 0),
             .top(TopRequest(boardID: loadBoardID, limit: 10, start: .offset(0)))),
            (LoadOp(kind: .page, player: 0, score: 0),
             .top(TopRequest(boardID: loadBoardID, limit: 50, start: .offset(5000)))),
            (LoadOp(kind: .around, player: player, score: 0),
             .around(AroundRequest(boardID: loadBoardID, playerID: LoadPlayerID.string(player), before: 5, after: 5))),
            (LoadOp(kind: .preloadBatch, player: batchFirst, score: batchCount),
             .submitBatch(
                (batchFirst..<(batchFirst + batchCount)).map {
                    SubmitRequest(
                        boardID: loadBoardID, playerID: LoadPlayerID.string($0),
                        score: Int64(LoadRandom.preloadScore(seed: seed, index: $0, players: players)))
                })),
        ]
        for (index, (op, method)) in cases.enumerated() {
            var buffer = ByteBufferAllocator().buffer(capacity: 256)
            slots[index].startNanos = 1
            wire.encode(op, slot: index, slots: &slots, into: &buffer)
            var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: 1 << 20)
            guard let frame = try decoder.decode(buffer: &buffer), buffer.readableBytes == 0 else {
                throw LoadProtocolError("self-check: \(op.kind.name) request is not exactly one frame")
            }
            let decoded = try WireCodec.decodeRequest(frame)
            let expected = RequestEnvelope(callID: UInt64(index + 1), method: method)
            guard decoded == expected else {
                throw LoadProtocolError("self-check: \(op.kind.name) request decodes to \(decoded), expected \(expected)")
            }
        }
    }
}
