/// File names inside `shard-NNN/`:
///
///     wal-<segment, 16 lowercase hex>.log          log segments, written in segment order
///     snapshot-<segment, 16 hex>.snap              a complete snapshot; replay starts at that segment
///     snapshot-<segment, 16 hex>.snap.tmp          a snapshot being written (ignored and removed)
///
/// Fixed-width hex keeps `ls` order equal to segment order.
enum ShardFiles {
    static func directoryName(shard: Int) -> String {
        let digits = String(shard)
        return "shard-" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }

    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func segmentName(_ segment: UInt64) -> String { "wal-\(hex16(segment)).log" }
    static func snapshotName(_ segment: UInt64) -> String { "snapshot-\(hex16(segment)).snap" }
    static func snapshotTempName(_ segment: UInt64) -> String { snapshotName(segment) + ".tmp" }

    enum Kind: Equatable {
        case segment(UInt64)
        case snapshot(UInt64)
        case snapshotTemp(UInt64)
    }

    static func classify(_ name: String) -> Kind? {
        if let number = number(in: name, prefix: "wal-", suffix: ".log") { return .segment(number) }
        if let number = number(in: name, prefix: "snapshot-", suffix: ".snap") { return .snapshot(number) }
        if let number = number(in: name, prefix: "snapshot-", suffix: ".snap.tmp") { return .snapshotTemp(number) }
        return nil
    }

    private static func number(in name: String, prefix: String, suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        // Only the name the server writes (16 lowercase hex digits): `UInt64(_:radix:)` also takes
        // "+"-prefixed and uppercase digits, and a stray file so named would be read as a segment
        // that recovery then opens by its canonical name (and does not find).
        guard digits.count == 16, let number = UInt64(digits, radix: 16), hex16(number) == digits else { return nil }
        // Segments count from 1, and recovery steps to the next number: 0 and the last value are
        // never written by the server (and would overflow that arithmetic), so they are not ours.
        guard number != 0 && number != .max else { return nil }
        return number
    }

    /// What a shard directory holds, sorted by segment.
    struct Listing {
        var segments: [UInt64] = []
        var snapshots: [UInt64] = []
        var temporaries: [UInt64] = []
    }

    static func list(_ directory: String) throws(StorageError) -> Listing {
        var listing = Listing()
        guard POSIX.isDirectory(directory) else { return listing }
        for name in try POSIX.listDirectory(directory) {
            switch classify(name) {
            case .segment(let n): listing.segments.append(n)
            case .snapshot(let n): listing.snapshots.append(n)
            case .snapshotTemp(let n): listing.temporaries.append(n)
            case nil: break
            }
        }
        listing.segments.sort()
        listing.snapshots.sort()
        listing.temporaries.sort()
        return listing
    }
}
