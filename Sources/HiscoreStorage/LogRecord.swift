/// The resulting state of one player's entry after a write.
///
/// Redo records carry *state*, not operations (not "increment by 5"): replaying one twice, or
/// replaying it over a snapshot that already holds it or a later state, converges to the same
/// result, so replay is idempotent and only the order of records matters.
public struct PutRecord: Sendable, Equatable {
    /// The board's incarnation (unique per board creation).
    public var board: UInt64
    public var playerID: String
    public var score: Int64
    public var subscore: Int64
    /// The entry's arrival sequence (the tie-breaker); round-trips exactly.
    public var sequence: UInt64
    public var metadata: [UInt8]

    public init(board: UInt64, playerID: String, score: Int64, subscore: Int64, sequence: UInt64, metadata: [UInt8]) {
        self.board = board
        self.playerID = playerID
        self.score = score
        self.subscore = subscore
        self.sequence = sequence
        self.metadata = metadata
    }
}

/// One redo record of a shard's write-ahead log.
public enum LogRecord: Sendable, Equatable {
    /// The entry's full resulting state.
    case put(PutRecord)
    /// The player left the board.
    case remove(board: UInt64, playerID: String)
    /// Every entry of the board is gone (season reset or board deletion).
    case clearBoard(board: UInt64)
}

/// Payload encoding: `[type u8]` then the fields, little-endian (see docs/durability.md).
///
///     put:        1, board u64, sequence u64, score i64, subscore i64, playerID (varint len + UTF-8), metadata (varint len + bytes)
///     remove:     2, board u64, playerID
///     clearBoard: 3, board u64
extension LogRecord {
    enum Kind: UInt8 {
        case put = 1
        case remove = 2
        case clearBoard = 3
    }

    /// Traps on a record recovery could not decode: crashing here beats writing a log that
    /// refuses to load (the engine's own limits are far below these).
    func encode(into buffer: inout [UInt8]) {
        switch self {
        case .put(let put):
            precondition(
                put.playerID.utf8.count <= DecodeLimits.playerIDBytes && put.metadata.count <= DecodeLimits.metadataBytes,
                "log record over the storage limits (player id \(put.playerID.utf8.count) B, metadata \(put.metadata.count) B)")
            buffer.append(Kind.put.rawValue)
            buffer.appendLE(put.board)
            buffer.appendLE(put.sequence)
            buffer.appendLE(put.score)
            buffer.appendLE(put.subscore)
            buffer.appendString(put.playerID)
            buffer.appendBytes(put.metadata)
        case .remove(let board, let playerID):
            precondition(playerID.utf8.count <= DecodeLimits.playerIDBytes, "player id over the storage limit")
            buffer.append(Kind.remove.rawValue)
            buffer.appendLE(board)
            buffer.appendString(playerID)
        case .clearBoard(let board):
            buffer.append(Kind.clearBoard.rawValue)
            buffer.appendLE(board)
        }
    }

    /// Upper bound of the encoded size (for reserving buffer space).
    var encodedSizeBound: Int {
        switch self {
        case .put(let put): 33 + 10 + put.playerID.utf8.count + 10 + put.metadata.count
        case .remove(_, let playerID): 9 + 10 + playerID.utf8.count
        case .clearBoard: 9
        }
    }

    /// Decodes a payload whose CRC already matched; nil when it is malformed (which then is
    /// corruption or a newer format, never a torn write).
    static func decode(_ payload: UnsafeRawBufferPointer) -> LogRecord? {
        var reader = ByteReader(payload)
        guard let type = reader.u8(), let kind = Kind(rawValue: type), let board = reader.u64() else { return nil }
        let record: LogRecord
        switch kind {
        case .put:
            guard let sequence = reader.u64(), let score = reader.i64(), let subscore = reader.i64(),
                let playerID = reader.string(max: DecodeLimits.playerIDBytes),
                let metadata = reader.byteArray(max: DecodeLimits.metadataBytes)
            else { return nil }
            record = .put(PutRecord(
                board: board, playerID: playerID, score: score, subscore: subscore, sequence: sequence,
                metadata: metadata))
        case .remove:
            guard let playerID = reader.string(max: DecodeLimits.playerIDBytes) else { return nil }
            record = .remove(board: board, playerID: playerID)
        case .clearBoard:
            record = .clearBoard(board: board)
        }
        // Strict: trailing bytes mean a format this build does not know, or corruption.
        return reader.isAtEnd ? record : nil
    }
}
