import CProtobufC
import HiscoreCore
import HiscoreProtoC

// `RankEvent` (subscription stream frames) <-> protobuf-c structs.

extension RankEvent {
    init(protoC event: Hiscore__V1__RankEvent) throws(WireError) {
        let change: RankEventChange
        switch event.change_case {
        case HISCORE__V1__RANK_EVENT__CHANGE_PLAYER:
            let player = try ProtoCRead.required(event.player, field: "player")
            change = .player(
                PlayerRankChange(
                    entry: try WireEntry(protoCOrDefault: player.entry),
                    previousRank: player.previous_rank,
                    present: player.present != 0))
        case HISCORE__V1__RANK_EVENT__CHANGE_WINDOW:
            change = .window(try WindowUpdate(protoC: ProtoCRead.required(event.window, field: "window")))
        case HISCORE__V1__RANK_EVENT__CHANGE_FEED:
            let feed = try ProtoCRead.required(event.feed, field: "feed")
            change = .feed(
                try ProtoCRead.repeated(feed.items, count: feed.n_items, field: "items") {
                    (item) throws(WireError) in try FeedItem(protoC: item)
                })
        default:
            throw .invalidField("change: missing (set one of player, window, feed)")
        }
        self.init(boardVersion: event.board_version, snapshot: event.snapshot != 0, change: change)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__RankEvent> {
        let event = arena.message(hiscore__v1__rank_event__init)
        event.pointee.board_version = boardVersion
        event.pointee.snapshot = snapshot ? 1 : 0
        switch change {
        case .player(let player):
            let body = arena.message(hiscore__v1__player_rank_change__init)
            body.pointee.entry = player.entry.protoC(in: arena)
            body.pointee.previous_rank = player.previousRank
            body.pointee.present = player.present ? 1 : 0
            event.pointee.change_case = HISCORE__V1__RANK_EVENT__CHANGE_PLAYER
            event.pointee.player = body
        case .window(let window):
            event.pointee.change_case = HISCORE__V1__RANK_EVENT__CHANGE_WINDOW
            event.pointee.window = window.protoC(in: arena)
        case .feed(let items):
            let body = arena.message(hiscore__v1__feed_batch__init)
            body.pointee.n_items = items.count
            body.pointee.items = arena.pointerArray(items) { $0.protoC(in: arena) }
            event.pointee.change_case = HISCORE__V1__RANK_EVENT__CHANGE_FEED
            event.pointee.feed = body
        }
        return event
    }
}

extension WindowUpdate {
    init(protoC window: Hiscore__V1__WindowUpdate) throws(WireError) {
        self.init(
            entries: try ProtoCRead.repeated(window.entries, count: window.n_entries, field: "entries") {
                (entry) throws(WireError) in try WireEntry(protoC: entry)
            },
            changes: try ProtoCRead.repeated(window.changes, count: window.n_changes, field: "changes") {
                (change) throws(WireError) in try WindowChange(protoC: change)
            },
            windowSize: window.window_size)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__WindowUpdate> {
        let window = arena.message(hiscore__v1__window_update__init)
        window.pointee.n_entries = entries.count
        window.pointee.entries = arena.pointerArray(entries) { $0.protoC(in: arena) }
        window.pointee.n_changes = changes.count
        window.pointee.changes = arena.pointerArray(changes) { $0.protoC(in: arena) }
        window.pointee.window_size = windowSize
        return window
    }
}

extension WindowChange {
    init(protoC change: Hiscore__V1__WindowChange) throws(WireError) {
        self.init(
            kind: try WindowChangeKind(protoC: change.kind),
            entry: try WireEntry(protoCOrDefault: change.entry),
            position: change.position,
            previousPosition: change.previous_position)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__WindowChange> {
        let change = arena.message(hiscore__v1__window_change__init)
        change.pointee.kind = kind.protoC
        change.pointee.entry = entry.protoC(in: arena)
        change.pointee.position = position
        change.pointee.previous_position = previousPosition
        return change
    }
}

extension FeedItem {
    init(protoC item: Hiscore__V1__FeedItem) throws(WireError) {
        self.init(
            entry: try WireEntry(protoCOrDefault: item.entry),
            previousRank: item.previous_rank,
            created: item.created != 0,
            removed: item.removed != 0,
            boardVersion: item.board_version)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__FeedItem> {
        let item = arena.message(hiscore__v1__feed_item__init)
        item.pointee.entry = entry.protoC(in: arena)
        item.pointee.previous_rank = previousRank
        item.pointee.created = created ? 1 : 0
        item.pointee.removed = removed ? 1 : 0
        item.pointee.board_version = boardVersion
        return item
    }
}
