/// How a `HiscoreServer` is set up. `hiscored` fills it from flags and `HISCORE_*` variables.
public struct ServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 = an ephemeral port (tests); the bound port is `HiscoreServer.localPort`.
    public var port: Int = 7450
    /// Shards = event loops = threads, at most `maxShards`. Default: one per core (up to that).
    public var shards: Int = min(System.coreCount, ServerConfiguration.maxShards)
    /// The most shards a server runs (`hiscored --shards` is checked against it).
    public static let maxShards = 256
    /// Where durable state lives (created when missing).
    public var dataDirectory: String = "./hiscore-data"
    /// Create a board with the default config on its first submit.
    public var autoCreateBoards: Bool = true
    /// fsync (acknowledge after the group fsync), async (acknowledge before; fsync within
    /// `asyncFlushSeconds`), or memory (no disk). See docs/durability.md.
    public var durability: DurabilityMode = .fsync
    /// A shard snapshots (and drops older log segments) once its log grew by this much.
    public var snapshotAfterLogBytes: UInt64 = 64 << 20
    /// The wall clock for season resets, in microseconds since the Unix epoch (tests inject one).
    public var clock: @Sendable () -> Int64 = { Int64(SequenceClock.nowMicros()) }
    /// Hard memory ceiling in bytes (jemalloc allocated); 0 = none. See `MemoryCeiling`.
    public var maxMemoryBytes: Int = 0
    public var limits = ServerLimits()
    /// API keys and the player-token secret; empty = open (then only loopback is allowed).
    public var access = AccessControl()
    /// The admin HTTP listener (/metrics, /healthz, /readyz); port 0 = ephemeral, nil = none.
    public var adminHost: String = "127.0.0.1"
    public var adminPort: Int? = 7451
    /// Calls per second the server is sized for: above 80% of it a one-line summary is logged
    /// each second (and nothing otherwise).
    public var capacityCallsPerSecond: Int = 200_000
    /// TLS on the client port; nil = plain TCP. The admin HTTP port is never TLS.
    public var tls: ServerTLS?

    public init() {}
}

import HiscoreAuth
import HiscoreStorage
import NIOCore
