/// A map from UInt64 keys to values for a connection's hot bookkeeping (`InflightCalls`), cheaper
/// than Swift's Dictionary for it: no SipHash, no rehashing on removal.
///
/// Layout: parallel arrays of keys and optional values (nil = empty bucket), power-of-two capacity,
/// linear probing, at most half full (doubles when it gets there; never shrinks). A key's home is
/// Fibonacci hashing (multiply by 2^64/phi, keep the top bits), so consecutive keys land on
/// spread-out buckets. Removal shifts the later entries of the run back into the hole (Knuth's
/// algorithm R): no tombstones, and a probe stops at the first empty bucket.
///
/// Cost: O(1) expected per operation. Keys are XORed with a random seed per table before they
/// are hashed, so a client cannot compute ids that collide; if it did, operations would be linear
/// in the number of entries, which the caller bounds (`ServerLimits.maxInflightCalls`). The table
/// allocates only when it doubles.
struct IntegerKeyTable<Value> {
    private var keys: [UInt64] = []
    private var values: [Value?] = []
    private var shift: UInt64 = 64
    private let seed: UInt64
    private(set) var count = 0

    /// `seed`: mixed into every key's hash; tests pass a fixed one.
    init(seed: UInt64 = .random(in: .min ... .max)) {
        self.seed = seed
    }

    private var mask: Int { keys.count - 1 }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: ((key ^ seed) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The bucket holding `key`.
    private func bucket(of key: UInt64) -> Int? {
        guard count > 0 else { return nil }
        var index = home(key)
        while values[index] != nil {
            if keys[index] == key { return index }
            index = (index + 1) & mask
        }
        return nil
    }

    func value(for key: UInt64) -> Value? {
        guard let index = bucket(of: key) else { return nil }
        return values[index]
    }

    func contains(_ key: UInt64) -> Bool { bucket(of: key) != nil }

    /// Adds `key`, which must not be present.
    mutating func insert(_ key: UInt64, _ value: Value) {
        assert(!contains(key), "key already present")
        if (count + 1) * 2 > keys.count { grow() }
        place(key, value)
        count += 1
    }

    /// Takes out `key`'s value, or nil when absent.
    mutating func remove(_ key: UInt64) -> Value? {
        guard let index = bucket(of: key), let value = values[index] else { return nil }
        var hole = index
        var next = (hole + 1) & mask
        while values[next] != nil {
            // The entry at `next` may move back unless its home lies cyclically in (hole, next].
            let entryHome = home(keys[next])
            let staysPut = hole <= next ? (hole < entryHome && entryHome <= next) : (hole < entryHome || entryHome <= next)
            if !staysPut {
                keys[hole] = keys[next]
                values[hole] = values[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        values[hole] = nil
        count -= 1
        return value
    }

    private mutating func place(_ key: UInt64, _ value: Value) {
        var index = home(key)
        while values[index] != nil { index = (index + 1) & mask }
        keys[index] = key
        values[index] = value
    }

    private mutating func grow() {
        let capacity = max(16, keys.count * 2)
        let oldKeys = keys
        let oldValues = values
        keys = Array(repeating: 0, count: capacity)
        values = Array(repeating: nil, count: capacity)
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        for index in oldKeys.indices {
            if let value = oldValues[index] { place(oldKeys[index], value) }
        }
    }
}
