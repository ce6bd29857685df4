/// The stable hash that spreads players over shards. It must not change between releases: a
/// shard's durable state holds exactly the players that hash to it. (Swift's `Hasher` is seeded
/// per process, so it cannot be used here.) FNV-1a, 64-bit, over the UTF-8 bytes.
public enum PlayerHash {
    public static func hash(_ playerID: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var id = playerID
        id.withUTF8 { bytes in
            for byte in bytes {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01b3
            }
        }
        // Final avalanche (from MurmurHash3) so that ids differing only in their last digit spread.
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return hash
    }
}
