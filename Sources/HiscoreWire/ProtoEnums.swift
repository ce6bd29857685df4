import HiscoreCore
import HiscoreProtoC

// Proto enums <-> Swift enums. Decoding rejects numbers this protocol version does not define,
// naming the field; encoding is total.

extension SortOrder {
    init(protoC value: Hiscore__V1__SortOrder, field: String) throws(WireError) {
        switch value {
        case HISCORE__V1__SORT_ORDER__SORT_ORDER_DESCENDING: self = .descending
        case HISCORE__V1__SORT_ORDER__SORT_ORDER_ASCENDING: self = .ascending
        default: throw ProtoCRead.unknownEnumValue(field, value.rawValue)
        }
    }

    var protoC: Hiscore__V1__SortOrder {
        switch self {
        case .descending: HISCORE__V1__SORT_ORDER__SORT_ORDER_DESCENDING
        case .ascending: HISCORE__V1__SORT_ORDER__SORT_ORDER_ASCENDING
        }
    }
}

extension WriteOperator {
    init(protoC value: Hiscore__V1__WriteOperator, field: String) throws(WireError) {
        switch value {
        case HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_BEST: self = .best
        case HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_SET: self = .set
        case HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_INCREMENT: self = .increment
        case HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_DECREMENT: self = .decrement
        default: throw ProtoCRead.unknownEnumValue(field, value.rawValue)
        }
    }

    var protoC: Hiscore__V1__WriteOperator {
        switch self {
        case .best: HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_BEST
        case .set: HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_SET
        case .increment: HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_INCREMENT
        case .decrement: HISCORE__V1__WRITE_OPERATOR__WRITE_OPERATOR_DECREMENT
        }
    }
}

extension RankMode {
    /// A request's rank mode: RANK_MODE_DEFAULT is nil (use the board's).
    static func requested(protoC value: Hiscore__V1__RankMode, field: String = "rank_mode") throws(WireError)
        -> RankMode?
    {
        switch value {
        case HISCORE__V1__RANK_MODE__RANK_MODE_DEFAULT: nil
        case HISCORE__V1__RANK_MODE__RANK_MODE_ORDINAL: .ordinal
        case HISCORE__V1__RANK_MODE__RANK_MODE_COMPETITION: .competition
        case HISCORE__V1__RANK_MODE__RANK_MODE_DENSE: .dense
        default: throw ProtoCRead.unknownEnumValue(field, value.rawValue)
        }
    }

    /// A board's rank mode: RANK_MODE_DEFAULT means ordinal there.
    init(boardProtoC value: Hiscore__V1__RankMode, field: String = "rank_mode") throws(WireError) {
        self = try RankMode.requested(protoC: value, field: field) ?? .ordinal
    }

    var protoC: Hiscore__V1__RankMode {
        switch self {
        case .ordinal: HISCORE__V1__RANK_MODE__RANK_MODE_ORDINAL
        case .competition: HISCORE__V1__RANK_MODE__RANK_MODE_COMPETITION
        case .dense: HISCORE__V1__RANK_MODE__RANK_MODE_DENSE
        }
    }
}

extension Optional where Wrapped == RankMode {
    /// nil (the board's default) is RANK_MODE_DEFAULT on the wire.
    var protoC: Hiscore__V1__RankMode { self?.protoC ?? HISCORE__V1__RANK_MODE__RANK_MODE_DEFAULT }
}

extension StatusCode {
    /// Codes a newer server may add decode as `.unknown`, as gRPC prescribes.
    init(protoC value: Hiscore__V1__StatusCode) {
        self = StatusCode(rawValue: UInt32(truncatingIfNeeded: value.rawValue)) ?? .unknown
    }

    var protoC: Hiscore__V1__StatusCode { Hiscore__V1__StatusCode(rawValue: .init(rawValue)) }
}

extension WindowChangeKind {
    init(protoC value: Hiscore__V1__WindowChangeKind, field: String = "kind") throws(WireError) {
        switch value {
        case HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_ENTERED: self = .entered
        case HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_LEFT: self = .left
        case HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_MOVED: self = .moved
        default: throw ProtoCRead.unknownEnumValue(field, value.rawValue)
        }
    }

    var protoC: Hiscore__V1__WindowChangeKind {
        switch self {
        case .entered: HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_ENTERED
        case .left: HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_LEFT
        case .moved: HISCORE__V1__WINDOW_CHANGE_KIND__WINDOW_CHANGE_KIND_MOVED
        }
    }
}
