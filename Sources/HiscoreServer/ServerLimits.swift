import HiscoreAuth

/// Every bound the server enforces, with its default. docs/protocol.md ("Limits") documents each
/// one (the credentials' in docs/security.md); `hiscored --help` lists the flags that change them.
public struct ServerLimits: Sendable, Equatable {
    /// Largest frame body (protobuf bytes) accepted or sent. Larger declared lengths are refused with
    /// RESOURCE_EXHAUSTED and the connection is closed, before any of the body is buffered.
    public var maxFrameBytes: Int = 1 << 20
    /// Calls in flight per connection; one more gets RESOURCE_EXHAUSTED (the connection stays open).
    public var maxInflightCalls: Int = 256
    /// Items in one SubmitBatch.
    public var maxBatchSubmits: Int = 1000
    /// SubmitBatch items in flight per connection (admitted, not yet answered). Past it the
    /// connection reads no further frames until answers bring it back under: no error, the
    /// client's next frames wait in its socket. It bounds the working memory of a writer's
    /// pipelined batches (~0.5–0.8 KB an item while it runs; `max_inflight_calls` alone would
    /// let one connection hold 256 batches of 1,000). At the defaults the server-wide bound
    /// below is the one reached first; this one matters where that one is raised.
    public var maxInflightBatchItems: Int = 4096
    /// SubmitBatch items in flight over the server, split evenly among the shards' event loops
    /// (`BatchItemBudget`; a connection is served by one loop). While its loop is at its share,
    /// a connection with a batch in flight reads no further frames until the loop is back
    /// under; a connection with none always gets one batch through, so readers are never held
    /// for writers and the slack is about one batch per writing connection. Two batches of 1,000 in
    /// flight keep a loop busy: more load no faster and only add memory.
    public var maxServerInflightBatchItems: Int = 4096
    /// Entries in one Top page, one side of Around, and boards in one ListBoards page.
    public var maxPageEntries: Int = 1000
    /// Player ids in one Entries request.
    public var maxPlayersPerQuery: Int = 1000
    /// Keys per shard an offset page may fetch when the board's shards do not interleave evenly
    /// enough for the windowed proof (`TopPlan`): beyond it the page is refused with
    /// RESOURCE_EXHAUSTED (page with a cursor instead).
    public var maxPageFallbackKeys: Int = 250_000
    /// Bytes the feeds' backlogs (writes held until a feed's consumer is sent them) may hold over
    /// every board of the server, counted as each board's are (160 bytes + player id + metadata
    /// per item); past it, feeds holding back more than an event's worth on a board that gets
    /// more writes are ended with RESOURCE_EXHAUSTED. Each board's own bound is 64 MiB.
    public var maxFeedBacklogBytes: Int = 256 << 20
    /// Bytes the boards' cached tops (each board's last top snapshot and packed answer, each at
    /// most about a frame) may keep over the server; past it the tops least recently read give
    /// way (`TopCacheBudget`), and a board that finds no room, or any board above
    /// `--max-memory`, computes its top for each call. 0 keeps none.
    public var maxTopCacheBytes: Int = 64 << 20
    /// Open subscriptions per connection.
    public var maxSubscriptions: Int = 1000
    /// Bytes of entries the open top, around and player streams of one connection may keep,
    /// counted at subscribe time as the most their windows can hold (entries × (64 + 128 +
    /// the board's max_metadata_bytes)): each stream keeps the last window it sent, to send
    /// changes against it. A subscribe past it gets RESOURCE_EXHAUSTED.
    public var maxStreamWindowBytes: Int = 64 << 20
    /// Entries the open top, around and player streams of one connection may watch, counted at
    /// subscribe time as the entries their windows hold (a top N counts N, an around a...b
    /// counts a + b + 1, a player 1). Each event of a stream carries (and is encoded for) its
    /// window's changes, up to all of it: what a connection's streams cost the server grows
    /// with this, not with their number (149 top-1000 streams, within the bytes bound, cut a
    /// writer's throughput 6x). The default fits `max_subscriptions` around-5 windows, or 16
    /// top-1000 ones. A subscribe past it gets RESOURCE_EXHAUSTED.
    public var maxStreamWindowEntries: Int = 16_384
    /// Ping payload bytes.
    public var maxPingPayloadBytes: Int = 1024
    /// Concurrent client connections; further connections are closed at once.
    public var maxConnections: Int = 10_000
    /// Boards on the server (auto-created or explicit).
    public var maxBoards: Int = 10_000
    /// Seconds a new connection may take to send the 8-byte preface.
    public var prefaceTimeoutSeconds: Int = 10
    /// Calls per second per connection (token bucket, burst of twice this); beyond it calls get
    /// RESOURCE_EXHAUSTED. 0 = unlimited.
    public var maxCallsPerSecondPerConnection: Int = 50_000
    /// Seconds a connection may stay silent (no request, nothing in flight, no subscription)
    /// before it is closed. Slowloris-style connections are closed by this and the preface timeout.
    public var idleTimeoutSeconds: Int = 300
    /// Seconds a frame may take to arrive once its first bytes have: a connection holding an
    /// unfinished frame longer is closed (trickled or stalled frames would hold up to
    /// `maxFrameBytes` of buffer each).
    public var frameTimeoutSeconds: Int = 60
    /// On a server with API keys or a token secret: seconds a connection may take to present a
    /// valid credential (`authenticate`, or a call's own `auth_token`) before it is closed.
    public var authenticationTimeoutSeconds: Int = 60
    /// Failed `authenticate` calls after which a connection is closed.
    public var maxFailedAuthentications: Int = 5
    /// Longest accepted API key or player token (the verifier's own bound: a longer token
    /// could never verify).
    public var maxAuthTokenBytes: Int = PlayerTokenVerifier.maxBytes
    /// Seconds a graceful shutdown waits for in-flight calls before closing connections.
    public var shutdownGraceSeconds: Int = 10

    public init() {}
}
