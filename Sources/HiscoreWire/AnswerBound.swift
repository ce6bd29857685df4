import HiscoreCore

/// How many entries of a board one answer can carry, from the board's limits alone.
///
/// Every entry of an answer carries its player id and metadata. On a board allowing 4 KiB of
/// metadata a page of `max_page_entries` (1000) could need four frames' worth of bytes, and every
/// shard would build its share of the page (each its best `limit` entries, metadata copied)
/// before the frame's bound refused the answer: ~8 MB of copies per call with two shards, and a
/// round runs up to 128 calls at once. So, like a batch of submits (the server's `CallRouter`),
/// a top, around or entries call whose answer *could* exceed `max_frame_bytes` on its board is
/// refused before it runs, saying how many entries fit. A page size that works in testing then cannot start
/// failing in production once players fill their metadata, and no read builds more than about a
/// frame of entries per shard. Boards at the default 256 bytes of metadata fit 2,340 entries a
/// frame: more than `max_page_entries`, so only boards configured for large metadata (or servers
/// with small frames) see the bound. Clients page within it (`entriesPerAnswer`, from the
/// handshake's `max_frame_bytes` and the board's `max_metadata_bytes`).
public struct AnswerBound: Sendable {
    /// Bytes an entry takes in an answer besides its player id and metadata: its own framing
    /// (tag and length) and five fields with theirs (score, subscore, rank, reached_at_us as
    /// 10-byte varints at most; the id's and metadata's tags and lengths): 53, rounded up.
    public static let entryOverhead = 64
    /// Bytes of an answer besides its entries: the envelope, call id, board size and a page
    /// cursor (41 bytes), with their framing, rounded up.
    public static let answerOverhead = 256

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    /// The most bytes an entry of a board with these limits can take in an answer, for a player
    /// id of `playerIDBytes` (the longest allowed when not known).
    public func entryBytes(_ limits: BoardLimits, playerIDBytes: Int = Identifier.maxBytes) -> Int {
        Self.entryOverhead + playerIDBytes + limits.maxMetadataBytes
    }

    /// Entries of a board with these limits that always fit in one answer (at least 1: a server
    /// whose frames cannot hold one entry refuses the answer itself, after the read).
    public func entriesPerAnswer(_ limits: BoardLimits) -> Int {
        max(1, (maxFrameBytes - Self.answerOverhead) / entryBytes(limits))
    }

    /// nil when `count` entries of `board` always fit; otherwise the refusal to answer with.
    /// (`what` is only made for a refusal: callers describe the call with an interpolation, a
    /// string built, and an integer formatted, on every page and around otherwise.)
    public func refusal(count: Int, board: BoardConfig, asking what: @autoclosure () -> String) -> Status? {
        let fits = entriesPerAnswer(board.limits)
        guard count > fits else { return nil }
        return Status(
            .resourceExhausted,
            "\(what()) on board \(board.id) could answer more than max_frame_bytes (\(maxFrameBytes)): its entries may carry up to \(board.limits.maxMetadataBytes) bytes of metadata and \(Identifier.maxBytes) of player id; ask for at most \(fits) entries per call")
    }

    /// nil when the entries of these players always fit; otherwise the refusal.
    public func refusal(playerIDs: [String], board: BoardConfig) -> Status? {
        var bytes = Self.answerOverhead
        for id in playerIDs { bytes += entryBytes(board.limits, playerIDBytes: id.utf8.count) }
        guard bytes > maxFrameBytes else { return nil }
        let fits = entriesPerAnswer(board.limits)
        let advice = playerIDs.count > fits
            ? "ask for at most \(fits) players per call"
            : "the board's entries are too large for this server's frames (lower its max_metadata_bytes, or raise --max-frame-bytes)"
        return Status(
            .resourceExhausted,
            "entries of \(playerIDs.count) players on board \(board.id) could answer more than max_frame_bytes (\(maxFrameBytes)): its entries may carry up to \(board.limits.maxMetadataBytes) bytes of metadata; \(advice)")
    }
}
