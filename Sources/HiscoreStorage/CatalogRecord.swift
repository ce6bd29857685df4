import HiscoreCore

/// A board lifecycle event in `boards.log`. Times are microseconds since the Unix epoch.
public enum CatalogRecord: Sendable, Equatable {
    /// A board was created with a fresh incarnation (never reused, even after deletion).
    case created(incarnation: UInt64, config: BoardConfig, createdAt: UInt64)
    /// The board was deleted; its shard data is cleared by `LogRecord.clearBoard`.
    case deleted(incarnation: UInt64, at: UInt64)
    /// A season (period) boundary of the board: period `periodID` ended/started at `at`. Generic
    /// on purpose: the server decides what a reset means; the catalog only remembers the history.
    case season(incarnation: UInt64, periodID: UInt64, at: UInt64)
}

/// One live board.
public struct CatalogBoard: Sendable, Equatable {
    public var incarnation: UInt64
    public var config: BoardConfig
    public var createdAt: UInt64
    /// Season records of this board, oldest first (the archived periods).
    public var seasons: [CatalogSeason]
}

public struct CatalogSeason: Sendable, Equatable {
    public var periodID: UInt64
    public var at: UInt64
}

/// What the catalog says now.
public struct CatalogState: Sendable, Equatable {
    /// Live boards by incarnation.
    public var boards: [UInt64: CatalogBoard] = [:]
    /// The highest incarnation ever created (deleted ones included): allocate above it.
    public var highestIncarnation: UInt64 = 0

    public init() {}

    mutating func apply(_ record: CatalogRecord) {
        switch record {
        case .created(let incarnation, let config, let createdAt):
            boards[incarnation] = CatalogBoard(incarnation: incarnation, config: config, createdAt: createdAt, seasons: [])
            highestIncarnation = max(highestIncarnation, incarnation)
        case .deleted(let incarnation, _):
            boards[incarnation] = nil
            highestIncarnation = max(highestIncarnation, incarnation)
        case .season(let incarnation, let periodID, let at):
            boards[incarnation]?.seasons.append(CatalogSeason(periodID: periodID, at: at))
        }
    }
}

/// Payloads (first byte = type), little-endian:
///
///     1 created:   incarnation u64, createdAt u64, board id (varint len + UTF-8), scoreOrder u8,
///                  subscoreOrder u8, writeOperator u8, rankMode u8, maxEntries u64, maxMetadataBytes u32,
///                  flags u8 (bit 0: client_writes), reset period u8 (0 = none; else minute u32,
///                  weekday u8, dayOfMonth u8, keepPeriods u8)
///     2 deleted:   incarnation u64, at u64
///     3 season:    incarnation u64, periodID u64, at u64
///     4 highWater: incarnation u64   (written by compaction: keeps deleted incarnations unused)
enum CatalogCoding {
    enum Item: Equatable {
        case record(CatalogRecord)
        case highWater(UInt64)
    }

    static func encode(_ item: Item, into buffer: inout [UInt8]) {
        switch item {
        case .record(.created(let incarnation, let config, let createdAt)):
            precondition(config.id.utf8.count <= DecodeLimits.boardIDBytes, "board id over the storage limit")
            buffer.append(1)
            buffer.appendLE(incarnation)
            buffer.appendLE(createdAt)
            buffer.appendString(config.id)
            buffer.append(config.scoreOrder.rawValue)
            buffer.append(config.subscoreOrder.rawValue)
            buffer.append(config.writeOperator.rawValue)
            buffer.append(config.rankMode.rawValue)
            buffer.appendLE(UInt64(max(0, config.limits.maxEntries)))
            buffer.appendLE(UInt32(clamping: config.limits.maxMetadataBytes))
            buffer.append(config.clientWrites ? 1 : 0)
            if let reset = config.resetSchedule {
                buffer.append(reset.period.rawValue)
                buffer.appendLE(UInt32(reset.minuteOfDay))
                buffer.append(UInt8(clamping: reset.weekday))
                buffer.append(UInt8(clamping: reset.dayOfMonth))
                buffer.append(UInt8(clamping: reset.keepPeriods))
            } else {
                buffer.append(0)
            }
        case .record(.deleted(let incarnation, let at)):
            buffer.append(2)
            buffer.appendLE(incarnation)
            buffer.appendLE(at)
        case .record(.season(let incarnation, let periodID, let at)):
            buffer.append(3)
            buffer.appendLE(incarnation)
            buffer.appendLE(periodID)
            buffer.appendLE(at)
        case .highWater(let incarnation):
            buffer.append(4)
            buffer.appendLE(incarnation)
        }
    }

    static func decode(_ payload: UnsafeRawBufferPointer) -> Item? {
        var reader = ByteReader(payload)
        guard let type = reader.u8(), let incarnation = reader.u64() else { return nil }
        let item: Item
        switch type {
        case 1:
            guard let createdAt = reader.u64(), let id = reader.string(max: DecodeLimits.boardIDBytes),
                let scoreOrder = reader.u8().flatMap(SortOrder.init(rawValue:)),
                let subscoreOrder = reader.u8().flatMap(SortOrder.init(rawValue:)),
                let writeOperator = reader.u8().flatMap(WriteOperator.init(rawValue:)),
                let rankMode = reader.u8().flatMap(RankMode.init(rawValue:)),
                let maxEntries = reader.u64(), maxEntries <= UInt64(Int.max), let maxMetadata = reader.u32(),
                let flags = reader.u8(), flags <= 1, let resetPeriod = reader.u8()
            else { return nil }
            var resetSchedule: ResetSchedule?
            if resetPeriod != 0 {
                guard let period = ResetSchedule.Period(rawValue: resetPeriod), let minute = reader.u32(),
                    let weekday = reader.u8(), let dayOfMonth = reader.u8(), let keep = reader.u8()
                else { return nil }
                resetSchedule = ResetSchedule(
                    period: period, minuteOfDay: Int(minute), weekday: Int(weekday), dayOfMonth: Int(dayOfMonth),
                    keepPeriods: Int(keep))
            }
            let config = BoardConfig(
                id: id, scoreOrder: scoreOrder, subscoreOrder: subscoreOrder, writeOperator: writeOperator,
                rankMode: rankMode, limits: BoardLimits(maxEntries: Int(maxEntries), maxMetadataBytes: Int(maxMetadata)),
                clientWrites: flags == 1, resetSchedule: resetSchedule)
            // Only configs the server could have created: a reset schedule with weekday 0, say,
            // would make the season keeper loop (a CRC only proves the bytes are the ones written).
            guard (try? config.validate()) != nil else { return nil }
            item = .record(.created(incarnation: incarnation, config: config, createdAt: createdAt))
        case 2:
            guard let at = reader.u64() else { return nil }
            item = .record(.deleted(incarnation: incarnation, at: at))
        case 3:
            guard let periodID = reader.u64(), let at = reader.u64() else { return nil }
            item = .record(.season(incarnation: incarnation, periodID: periodID, at: at))
        case 4:
            item = .highWater(incarnation)
        default:
            return nil
        }
        return reader.isAtEnd ? item : nil
    }
}
