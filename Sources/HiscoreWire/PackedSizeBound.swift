import HiscoreCore
import HiscoreProtoC

/// An upper bound of a response's packed size, computed from the Swift values before they become
/// protobuf-c structs, for the responses a server sends most (entries, ranks, submits).
///
/// Why: protobuf-c needs a buffer as large as the message before `pack`, and its
/// `get_packed_size` walks the whole message to say how large, field by field through the
/// descriptors, `strlen` on every string: as much work again as `pack` itself. Reserving a bound
/// instead, `pack` writes the same bytes once and returns how many: a 50-entry page at rank 5000
/// (one shard) cost 13% less server CPU at one call in flight, 22% less at 16 (docs/benchmarks.md
/// §2, twelfth session).
///
/// How the bound holds. Every field of these messages has a number below 2048 (a tag of at most
/// 2 bytes); a varint is at most 10 bytes (negative int64 values take all 10); a length is below
/// 2^35 (a prefix of at most 5 bytes). So a scalar field takes at most 12 bytes, a `string` or
/// `bytes` field 7 + its length, a sub-message 7 + its own bound. The bound counts every field as
/// if set (proto3 omits defaults: only ever fewer bytes) and each string's UTF-8 length (protobuf-c
/// reads a C string up to its first NUL: never more). Unknown fields appear only in `.packed`,
/// whose exact size is known. Cost: O(entries), two counts read per entry.
///
/// `nil` for the other results: they are rare or small, and `get_packed_size` sizes them.
/// Debug builds check every bound against `get_packed_size` (`WireCodec.encodeResponse`), and
/// `PackedSizeBoundTests` checks random messages at the limits of every field.
enum PackedSizeBound {
    static let scalarField = 12
    static let lengthDelimitedOverhead = 7

    static func bytesField(_ count: Int) -> Int { lengthDelimitedOverhead + count }

    static func stringField(_ string: String) -> Int { lengthDelimitedOverhead + string.utf8.count }

    static func message(_ bound: Int) -> Int { lengthDelimitedOverhead + bound }

    /// `Entry`: player_id, metadata, four scalars; as a field of its parent.
    static func entry(_ entry: WireEntry) -> Int {
        message(stringField(entry.playerID) + bytesField(entry.metadata.count) + 4 * scalarField)
    }

    static func entry(_ entry: LeaderboardEntry) -> Int {
        message(stringField(entry.playerID) + bytesField(entry.metadata.count) + 4 * scalarField)
    }

    static func entries(_ entries: [LeaderboardEntry]) -> Int {
        var total = 0
        for entry in entries { total += Self.entry(entry) }
        return total
    }

    static func entries(_ entries: [WireEntry]) -> Int {
        var total = 0
        for entry in entries { total += Self.entry(entry) }
        return total
    }

    /// `Status`: code and message; as a field of its parent.
    static func status(_ status: Status) -> Int {
        message(scalarField + stringField(status.message))
    }

    /// `SubmitResponse`: entry, previous_rank, changed, created; as a field of its parent.
    static func submit(_ submit: SubmitResponse) -> Int {
        message(entry(submit.entry) + 3 * scalarField)
    }

    /// The result's field of `Response`, or nil when `get_packed_size` should size it.
    static func result(_ result: ResponseResult) -> Int? {
        switch result {
        case .submit(let submit):
            return Self.submit(submit)
        case .submitBatch(let results):
            var total = 0
            for item in results {
                total += message(status(item.status) + (item.response.map(Self.submit) ?? 0))
            }
            return message(total)
        case .getRank(let getRank):
            return message(entry(getRank.entry) + scalarField)
        case .top(let top):
            return message(entries(top.entries) + bytesField(top.nextCursor.count) + scalarField)
        case .around(let around):
            return message(entries(around.entries) + scalarField)
        case .entries(let entries):
            var missing = 0
            for id in entries.missingPlayerIDs { missing += stringField(id) }
            return message(Self.entries(entries.entries) + missing + scalarField)
        case .rankedTop(let top):
            return message(entries(top.entries) + bytesField(top.nextCursor.count) + scalarField)
        case .packed(let packed):
            return packed.encodedByteCount
        default:
            return nil
        }
    }

    /// `Response`: call_id, status, result; nil when `get_packed_size` should size it.
    static func response(_ envelope: ResponseEnvelope) -> Int? {
        var total = scalarField + (envelope.status.map(status) ?? 0)
        if let result = envelope.result {
            guard let resultBound = Self.result(result) else { return nil }
            total += resultBound
        }
        return total
    }

    /// protobuf-c's own `get_packed_size` of the envelope (what the bound must not fall below).
    static func exact(_ envelope: ResponseEnvelope, arena: WireArena = .forCurrentThread) -> Int {
        arena.reset()
        defer { arena.reset() }
        var response = Hiscore__V1__Response()
        hiscore__v1__response__init(&response)
        envelope.fill(&response, arena: arena)
        return hiscore__v1__response__get_packed_size(&response)
    }
}
