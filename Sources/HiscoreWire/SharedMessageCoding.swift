import CProtobufC
import HiscoreCore
import HiscoreProtoC

// Messages used by both requests and responses: Entry, BoardConfig, BoardLimits, BoardInfo,
// Status. `init(protoC:)` reads an unpacked struct; `protoC(in:)` builds one in an arena.

extension WireEntry {
    init(protoC entry: Hiscore__V1__Entry) throws(WireError) {
        self.init(
            playerID: try ProtoCRead.string(entry.player_id, field: "player_id"),
            score: entry.score,
            subscore: entry.subscore,
            rank: entry.rank,
            metadata: ProtoCRead.bytes(entry.metadata),
            reachedAtMicros: entry.reached_at_us)
    }

    /// An absent `Entry` field reads as the proto3 default (empty player, rank 0).
    init(protoCOrDefault entry: UnsafeMutablePointer<Hiscore__V1__Entry>?) throws(WireError) {
        if let entry {
            try self.init(protoC: entry.pointee)
        } else {
            self.init(playerID: "", score: 0)
        }
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__Entry> {
        Self.protoC(
            playerID: playerID, score: score, subscore: subscore, rank: rank, metadata: metadata,
            reachedAtMicros: reachedAtMicros, in: arena)
    }

    /// An `Entry` from its fields (a `WireEntry`'s, or a board entry's: `RankedTop`).
    @inline(__always)
    static func protoC(
        playerID: String, score: Int64, subscore: Int64, rank: UInt64, metadata: [UInt8], reachedAtMicros: Int64,
        in arena: WireArena
    ) -> UnsafeMutablePointer<Hiscore__V1__Entry> {
        let entry = arena.message(hiscore__v1__entry__init)
        entry.pointee.player_id = arena.cString(playerID)
        entry.pointee.score = score
        entry.pointee.subscore = subscore
        entry.pointee.rank = rank
        entry.pointee.metadata = arena.binaryData(metadata)
        entry.pointee.reached_at_us = reachedAtMicros
        return entry
    }
}

extension BoardConfig {
    init(protoC config: Hiscore__V1__BoardConfig) throws(WireError) {
        var limits = BoardLimits()
        if let wireLimits = config.limits?.pointee {
            guard wireLimits.max_entries <= UInt64(Int.max) else {
                throw .invalidField("max_entries: \(wireLimits.max_entries) is too large")
            }
            limits.maxEntries = Int(wireLimits.max_entries)
            // 0 = the server default; the range check (at most 4096) is the board layer's.
            if wireLimits.max_metadata_bytes != 0 {
                limits.maxMetadataBytes = Int(wireLimits.max_metadata_bytes)
            }
        }
        self.init(
            id: try ProtoCRead.string(config.board_id, field: "board_id"),
            scoreOrder: try SortOrder(protoC: config.score_order, field: "score_order"),
            subscoreOrder: try SortOrder(protoC: config.subscore_order, field: "subscore_order"),
            writeOperator: try WriteOperator(protoC: config.write_operator, field: "write_operator"),
            rankMode: try RankMode(boardProtoC: config.rank_mode),
            limits: limits, clientWrites: config.client_writes != 0,
            resetSchedule: try config.reset.flatMap { (reset) throws(WireError) in try ResetSchedule(protoC: reset.pointee) })
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__BoardConfig> {
        let config = arena.message(hiscore__v1__board_config__init)
        config.pointee.board_id = arena.cString(id)
        config.pointee.score_order = scoreOrder.protoC
        config.pointee.subscore_order = subscoreOrder.protoC
        config.pointee.write_operator = writeOperator.protoC
        // Canonical form: defaults are left out (ordinal is DEFAULT in a config; 256 metadata bytes is 0).
        config.pointee.rank_mode = rankMode == .ordinal ? HISCORE__V1__RANK_MODE__RANK_MODE_DEFAULT : rankMode.protoC
        config.pointee.client_writes = clientWrites ? 1 : 0
        config.pointee.reset = resetSchedule.map { $0.protoC(in: arena) }
        // Limits at their defaults are left out entirely (canonical form).
        guard limits != BoardLimits() else { return config }
        let wireLimits = arena.message(hiscore__v1__board_limits__init)
        wireLimits.pointee.max_entries = UInt64(clamping: limits.maxEntries)
        wireLimits.pointee.max_metadata_bytes =
            limits.maxMetadataBytes == BoardLimits().maxMetadataBytes ? 0 : UInt32(clamping: limits.maxMetadataBytes)
        config.pointee.limits = wireLimits
        return config
    }
}

extension BoardInfo {
    init(protoC info: Hiscore__V1__BoardInfo) throws(WireError) {
        self.init(
            config: try BoardConfig(protoC: ProtoCRead.required(info.config, field: "config")),
            size: info.size,
            version: info.version)
        periods = try ProtoCRead.repeated(info.periods, count: info.n_periods, field: "periods") {
            (period) throws(WireError) in
            PeriodInfo(periodID: period.period_id, startedAtMicros: period.started_at_us, endedAtMicros: period.ended_at_us, size: period.size)
        }
        currentPeriodID = info.current_period_id
        currentPeriodStartedAtMicros = info.current_period_started_at_us
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__BoardInfo> {
        let info = arena.message(hiscore__v1__board_info__init)
        info.pointee.config = config.protoC(in: arena)
        info.pointee.size = size
        info.pointee.version = version
        info.pointee.current_period_id = currentPeriodID
        info.pointee.current_period_started_at_us = currentPeriodStartedAtMicros
        if !periods.isEmpty {
            info.pointee.n_periods = periods.count
            info.pointee.periods = arena.pointerArray(periods) { period in
                let message = arena.message(hiscore__v1__period_info__init)
                message.pointee.period_id = period.periodID
                message.pointee.started_at_us = period.startedAtMicros
                message.pointee.ended_at_us = period.endedAtMicros
                message.pointee.size = period.size
                return message
            }
        }
        return info
    }
}

extension Status {
    init(protoC status: Hiscore__V1__Status) throws(WireError) {
        self.init(StatusCode(protoC: status.code), try ProtoCRead.string(status.message, field: "message"))
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__Status> {
        let status = arena.message(hiscore__v1__status__init)
        status.pointee.code = code.protoC
        status.pointee.message = arena.cString(message)
        return status
    }
}

extension ResetSchedule {
    init?(protoC reset: Hiscore__V1__ResetSchedule) throws(WireError) {
        let period: Period
        switch reset.period {
        case HISCORE__V1__RESET_PERIOD__RESET_PERIOD_NONE: return nil
        case HISCORE__V1__RESET_PERIOD__RESET_PERIOD_DAILY: period = .daily
        case HISCORE__V1__RESET_PERIOD__RESET_PERIOD_WEEKLY: period = .weekly
        case HISCORE__V1__RESET_PERIOD__RESET_PERIOD_MONTHLY: period = .monthly
        default: throw ProtoCRead.unknownEnumValue("reset.period", reset.period.rawValue)
        }
        self.init(
            period: period, minuteOfDay: Int(reset.minute_of_day), weekday: Int(reset.weekday),
            dayOfMonth: Int(reset.day_of_month),
            keepPeriods: reset.keep_periods == 0 ? ResetSchedule.defaultKeepPeriods : Int(reset.keep_periods))
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__ResetSchedule> {
        let reset = arena.message(hiscore__v1__reset_schedule__init)
        reset.pointee.period = Hiscore__V1__ResetPeriod(rawValue: UInt32(period.rawValue))
        reset.pointee.minute_of_day = UInt32(clamping: minuteOfDay)
        reset.pointee.weekday = period == .weekly ? UInt32(clamping: weekday) : 0
        reset.pointee.day_of_month = period == .monthly ? UInt32(clamping: dayOfMonth) : 0
        reset.pointee.keep_periods = keepPeriods == ResetSchedule.defaultKeepPeriods ? 0 : UInt32(clamping: keepPeriods)
        return reset
    }
}
