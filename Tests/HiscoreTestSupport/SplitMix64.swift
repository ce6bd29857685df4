#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64: tiny, fast, deterministic; drives every randomized test, so a failure printed
/// with its seed replays exactly.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform enough in 0..<bound (bound > 0).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// The same for unsigned bounds.
    public mutating func next(below bound: UInt64) -> UInt64 { next() % bound }

    /// True in `percent` of the calls.
    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// Seeds for randomized tests: `HISCORE_TEST_SEED` (one seed) overrides the defaults, so a
/// failure printed as "seed N" replays with `HISCORE_TEST_SEED=N swift test --filter ...`.
public func testSeeds(_ defaults: [UInt64]) -> [UInt64] {
    if let raw = getenv("HISCORE_TEST_SEED"), let seed = UInt64(String(cString: raw)) { return [seed] }
    return defaults
}
