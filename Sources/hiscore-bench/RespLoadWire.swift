import NIOCore

// Redis's RESP2 for the load generator: the commands equivalent to Hiscore's calls, written
// straight into the outbound buffer, and a non-allocating reply parser that checks every reply's
// type and size.
//
//   submit  ZADD lb GT <score> <member>
//   rank    ZREVRANK lb <member>
//   top10   ZREVRANGE lb 0 9 WITHSCORES
//   page    ZREVRANGE lb 5000 5049 WITHSCORES
//   around  ZREVRANK lb <member>, then ZREVRANGE lb max(0,r-5) r+5 WITHSCORES  (2 round trips)
//   preload ZADD lb s1 m1 ... s1000 m1000

/// A parsed RESP reply, summarized (no allocation).
struct RespSummary {
    /// The type byte: '+', '-', ':', '$', '*'.
    var type: UInt8 = 0
    /// ':' the integer; '$' the length (-1 = nil); '*' the element count (-1 = nil).
    var value: Int = 0
    /// '*': every element was a non-nil bulk string.
    var allBulk = true
    /// '-' / '+': the text's byte range.
    var text: Range<Int> = 0..<0
}

enum RespParser {
    /// Parses one reply starting at `start`. Returns its summary and end offset, or nil when the
    /// bytes end first. Throws on bytes that are not RESP.
    static func parse(_ bytes: UnsafeRawBufferPointer, at start: Int) throws(LoadProtocolError)
        -> (RespSummary, Int)?
    {
        guard start < bytes.count else { return nil }
        var summary = RespSummary()
        summary.type = bytes[start]
        guard let (lineEnd, next) = line(bytes, from: start + 1) else { return nil }
        switch summary.type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            summary.text = (start + 1)..<lineEnd
            return (summary, next)
        case UInt8(ascii: ":"):
            summary.value = try integer(bytes, start + 1, lineEnd)
            return (summary, next)
        case UInt8(ascii: "$"):
            let length = try integer(bytes, start + 1, lineEnd)
            summary.value = length
            if length < 0 { return (summary, next) }
            guard bytes.count - next >= length + 2 else { return nil }
            return (summary, next + length + 2)
        case UInt8(ascii: "*"):
            let count = try integer(bytes, start + 1, lineEnd)
            summary.value = count
            var offset = next
            if count <= 0 { return (summary, offset) }
            for _ in 0..<count {
                guard let (element, end) = try parse(bytes, at: offset) else { return nil }
                if element.type != UInt8(ascii: "$") || element.value < 0 { summary.allBulk = false }
                offset = end
            }
            return (summary, offset)
        default:
            throw LoadProtocolError("not a RESP reply (type byte \(summary.type))")
        }
    }

    /// The end of the line starting at `from` (index of "\r") and the index after "\r\n".
    @inline(__always)
    private static func line(_ bytes: UnsafeRawBufferPointer, from: Int) -> (Int, Int)? {
        var index = from
        while index + 1 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10 { return (index, index + 2) }
            index += 1
        }
        return nil
    }

    @inline(__always)
    private static func integer(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) throws(LoadProtocolError)
        -> Int
    {
        var index = from
        var negative = false
        if index < to, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < to, to - index <= 18 else { throw LoadProtocolError("bad RESP integer") }
        var value = 0
        while index < to {
            let digit = Int(bytes[index]) - 48
            guard digit >= 0, digit <= 9 else { throw LoadProtocolError("bad RESP integer") }
            value = value * 10 + digit
            index += 1
        }
        return negative ? -value : value
    }
}

struct RespLoadWire: LoadWire {
    let options: LoadWireOptions
    private(set) var stats = LoadWireStats()
    /// Slots in the order their commands were sent (Redis answers in order).
    private var sent = CircularBuffer<Int>(initialCapacity: 64)

    private static let top10Command = Array(
        "*5\r\n$9\r\nZREVRANGE\r\n$2\r\nlb\r\n$1\r\n0\r\n$1\r\n9\r\n$10\r\nWITHSCORES\r\n".utf8)
    private static let pageCommand = Array(
        "*5\r\n$9\r\nZREVRANGE\r\n$2\r\nlb\r\n$4\r\n5000\r\n$4\r\n5049\r\n$10\r\nWITHSCORES\r\n".utf8)
    private static let zaddGTPrefix = Array("*5\r\n$4\r\nZADD\r\n$2\r\nlb\r\n$2\r\nGT\r\n$".utf8)
    private static let zrevrankPrefix = Array("*3\r\n$8\r\nZREVRANK\r\n$2\r\nlb\r\n$14\r\n".utf8)
    private static let zrevrangePrefix = Array("*5\r\n$9\r\nZREVRANGE\r\n$2\r\nlb\r\n$".utf8)
    private static let withScoresSuffix = Array("$10\r\nWITHSCORES\r\n".utf8)
    private static let crlf: [UInt8] = [13, 10]

    init(options: LoadWireOptions) {
        self.options = options
    }

    func writePreface(into buffer: inout ByteBuffer) {}

    @inline(__always)
    private static func writeBulkDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "$"))
        loadWriteDecimal(loadDecimalLength(value), into: &buffer)
        buffer.writeBytes(crlf)
        loadWriteDecimal(value, into: &buffer)
        buffer.writeBytes(crlf)
    }

    @inline(__always)
    private static func writeBulkPlayer(_ index: Int, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("$14\r\n")
        LoadPlayerID.write(index, into: &buffer)
        buffer.writeBytes(crlf)
    }

    mutating func encode(_ op: LoadOp, slot: Int, slots: inout [LoadSlot], into buffer: inout ByteBuffer) {
        stats.commands += 1
        sent.append(slot)
        switch op.kind {
        case .submit, .submitUnranked:
            buffer.writeBytes(Self.zaddGTPrefix)
            loadWriteDecimal(loadDecimalLength(op.score), into: &buffer)
            buffer.writeBytes(Self.crlf)
            loadWriteDecimal(op.score, into: &buffer)
            buffer.writeBytes(Self.crlf)
            Self.writeBulkPlayer(op.player, into: &buffer)
        case .rank, .around:
            buffer.writeBytes(Self.zrevrankPrefix)
            LoadPlayerID.write(op.player, into: &buffer)
            buffer.writeBytes(Self.crlf)
        case .top10:
            buffer.writeBytes(Self.top10Command)
        case .page:
            buffer.writeBytes(Self.pageCommand)
        case .preloadBatch:
            buffer.writeInteger(UInt8(ascii: "*"))
            loadWriteDecimal(2 + 2 * op.score, into: &buffer)
            buffer.writeStaticString("\r\n$4\r\nZADD\r\n$2\r\nlb\r\n")
            for index in op.player..<(op.player + op.score) {
                let score = LoadRandom.preloadScore(seed: options.seed, index: index, players: options.players)
                Self.writeBulkDecimal(score, into: &buffer)
                Self.writeBulkPlayer(index, into: &buffer)
            }
        }
    }

    mutating func nextReply(
        from inbound: inout ByteBuffer, slots: inout [LoadSlot], outbound: inout ByteBuffer,
        errors: inout LoadErrorCounts
    ) throws(LoadProtocolError) -> LoadReply {
        let parsed = inbound.withUnsafeReadableBytes { bytes in
            Result { () throws(LoadProtocolError) in try RespParser.parse(bytes, at: 0) }
        }
        guard let (reply, end) = try parsed.get() else { return .incomplete }
        defer { inbound.moveReaderIndex(forwardBy: end) }
        guard let slot = sent.popFirst() else { throw LoadProtocolError("RESP reply with no command in flight") }
        let kind = slots[slot].kind
        if reply.type == UInt8(ascii: "-") {
            let text = inbound.getString(at: inbound.readerIndex + reply.text.lowerBound, length: reply.text.count) ?? ""
            errors.add("\(kind.name): -\(text)")
            return .done(slot: slot, failures: kind == .preloadBatch ? slots[slot].aux : 1)
        }
        let colon = UInt8(ascii: ":")
        let star = UInt8(ascii: "*")
        var problem: String? = nil
        switch kind {
        case .submit, .submitUnranked:
            if reply.type != colon { problem = "ZADD GT reply is not an integer" }
            // ZADD GT answers how many members it added, not whether a score rose: the changed
            // fraction comes from INFO persistence instead (ServerCommand).
            stats.submitReplies += 1
        case .rank:
            if reply.type != colon || reply.value < 0 { problem = "ZREVRANK reply is not a rank (nil: member missing)" }
        case .top10, .page:
            let expected = 2 * (kind == .top10 ? LoadShape.top10Limit : LoadShape.pageLimit)
            if reply.type != star || reply.value != expected || !reply.allBulk {
                problem = "ZREVRANGE reply of \(reply.value) elements, expected \(expected)"
            }
        case .around where slots[slot].phase == 0:
            guard reply.type == colon, reply.value >= 0 else {
                problem = "ZREVRANK reply is not a rank (nil: member missing)"
                break
            }
            let first = max(0, reply.value - LoadShape.aroundSide)
            let last = reply.value + LoadShape.aroundSide
            slots[slot].phase = 1
            stats.commands += 1
            sent.append(slot)
            outbound.writeBytes(Self.zrevrangePrefix)
            loadWriteDecimal(loadDecimalLength(first), into: &outbound)
            outbound.writeBytes(Self.crlf)
            loadWriteDecimal(first, into: &outbound)
            outbound.writeBytes(Self.crlf)
            Self.writeBulkDecimal(last, into: &outbound)
            outbound.writeBytes(Self.withScoresSuffix)
            return .followUp
        case .around:
            let most = 2 * (2 * LoadShape.aroundSide + 1)
            if reply.type != star || reply.value < 2 || reply.value > most || reply.value % 2 != 0 || !reply.allBulk {
                problem = "around ZREVRANGE reply of \(reply.value) elements"
            }
        case .preloadBatch:
            if reply.type != colon { problem = "ZADD reply is not an integer" } else { stats.added += reply.value }
        }
        if let problem {
            errors.add("\(kind.name): \(problem)")
            return .done(slot: slot, failures: 1)
        }
        return .done(slot: slot, failures: 0)
    }
}
