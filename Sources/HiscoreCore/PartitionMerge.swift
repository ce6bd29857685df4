/// A partition's keys at local ranks `localStart ..< localStart + keys.count` (sorted) and its
/// size: what the proof of an offset page needs, without building entries.
public struct KeyWindow: Sendable, Equatable {
    public var localStart: Int
    public var keys: [RankKey]
    public var partitionSize: Int

    public init(localStart: Int, keys: [RankKey], partitionSize: Int) {
        self.localStart = localStart
        self.keys = keys
        self.partitionSize = partitionSize
    }

    /// The window reaches the partition's last entry.
    public var isExhausted: Bool { localStart + keys.count >= partitionSize }
}

/// A partition's entries at local ranks `localStart ..< localStart + entries.count`, and its size:
/// a run fetched around a page's anchor key (`PartitionMerge.anchoredRun`).
public struct EntryRun: Sendable {
    public var localStart: Int
    public var entries: [LeaderboardEntry]
    public var partitionSize: Int

    public init(localStart: Int, entries: [LeaderboardEntry], partitionSize: Int) {
        self.localStart = localStart
        self.entries = entries
        self.partitionSize = partitionSize
    }
}

/// What the page proof reads of a partition's run (keys or entries): where it starts, the
/// partition's size, and its keys in order.
protocol SortedRun {
    var localStart: Int { get }
    var partitionSize: Int { get }
    var count: Int { get }
    func key(at index: Int) -> RankKey
}

extension KeyWindow: SortedRun {
    var count: Int { keys.count }
    @inline(__always) func key(at index: Int) -> RankKey { keys[index] }
}

extension EntryRun: SortedRun {
    var count: Int { entries.count }
    @inline(__always) func key(at index: Int) -> RankKey { entries[index].key }
}

/// Pure functions combining the answers of the S partitions (shards) of one board, each holding
/// the players whose id hashes to it. Every function here is exact: a board split over S
/// partitions answers like the same board in one (dense ranks excepted: they are not a sum).
public enum PartitionMerge {
    /// Offsets and limits come from clients: sums saturate instead of trapping.
    @inline(__always)
    static func saturatingSum(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    /// 1-based global rank from each partition's count of strictly better entries (for ordinal
    /// ranks: counts of `key`; competition: counts of `key.tieGroupStart`).
    public static func globalRank(localBetterCounts: [Int]) -> Int {
        1 + localBetterCounts.reduce(0, +)
    }

    /// The best `limit` entries of slices each sorted by key (a k-way merge).
    public static func mergeTop(_ slices: [[LeaderboardEntry]], limit: Int) -> [LeaderboardEntry] {
        guard limit > 0 else { return [] }
        var result: [LeaderboardEntry] = []
        result.reserveCapacity(min(limit, slices.reduce(0) { $0 + $1.count }))
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, slices.count)) { heads in
            heads.initialize(repeating: 0)
            appendMerged(
                lists: slices.count, heads: heads, ends: { slices[$0].count }, key: { slices[$0][$1].key }, entry: { slices[$0][$1] },
                upTo: limit, to: &result)
        }
        return result
    }

    /// Appends to `result`, until it holds `limit` entries, the k-way merge by key of lists
    /// 0..<`lists` (each sorted), list i from `heads[i]` up to `ends(i)`; the heads advance.
    /// The one merge of mergeTop, page(from:) and neighbourRun's worse side.
    @inline(__always)
    private static func appendMerged(
        lists: Int, heads: UnsafeMutableBufferPointer<Int>, ends: (Int) -> Int, key: (Int, Int) -> RankKey,
        entry: (Int, Int) -> LeaderboardEntry, upTo limit: Int, to result: inout [LeaderboardEntry]
    ) {
        while result.count < limit {
            var best = -1
            var bestKey = RankKey.max
            for index in 0..<lists where heads[index] < ends(index) {
                // The key alone: copying the entry to compare would retain its id and metadata.
                let candidate = key(index, heads[index])
                if best < 0 || candidate < bestKey {
                    best = index
                    bestKey = candidate
                }
            }
            guard best >= 0 else { return }
            result.append(entry(best, heads[best]))
            heads[best] += 1
        }
    }

    /// How wide a page's key windows are, in standard deviations of a partition's share of the
    /// ranks above the page's end (plus 8 keys).
    ///
    /// Why two widths: the keys of a window are what an offset page over S shards pays for (each
    /// key is a scattered record read, ~10 ns), and the slack is most of a window (at rank 5000
    /// over two shards: 25 keys of the page and 2 x 151 of slack at 4 deviations). A page misses
    /// when any partition's share strays past its window, so the first, `tight` attempt takes 2
    /// deviations over two partitions (a miss in ~5% of pages) and 3 over more (~0.3% per
    /// partition); a miss retries with `wide` windows (4 deviations: ~1 page in 15,000 per
    /// partition) before taking every key up to the page's end. Measured at rank 5000 over two
    /// shards: tight windows instead of wide cut a page's server CPU by 10-20%.
    public enum WindowSlack: Sendable {
        case tight
        case wide

        func deviations(partitions: Int) -> Double {
            switch self {
            case .tight: partitions <= 2 ? 2 : 3
            case .wide: 4
            }
        }
    }

    /// Local-rank windows to request from each partition for the global page
    /// `offset ..< offset + limit`, sized around the expected share of each partition (players
    /// are spread by hash, so partition i holds about size_i / total of any rank range) plus a
    /// slack (`WindowSlack`) of standard deviations of that share. Feed the key windows to
    /// `pageRanges`; when it returns nil, retry with wider windows, then with `fallbackWindows`.
    public static func planPageWindows(
        offset: Int, limit: Int, partitionSizes: [Int], slack: WindowSlack = .wide
    ) -> [Range<Int>] {
        let total = partitionSizes.reduce(0, +)
        guard offset >= 0, limit > 0, total > 0 else { return partitionSizes.map { _ in 0..<0 } }
        if offset >= total { return partitionSizes.map { _ in 0..<0 } }  // the page is empty
        let end = min(saturatingSum(offset, limit), total)
        let deviations = slack.deviations(partitions: partitionSizes.count)
        return partitionSizes.map { size in
            guard size > 0 else { return 0..<0 }
            let share = Double(size) / Double(total)
            let deviation = (Double(end) * share * (1 - share)).squareRoot()
            let margin = Int((deviations * deviation).rounded(.up)) + 8
            var start = Int((Double(offset) * share).rounded(.down)) - margin
            var stop = Int((Double(end) * share).rounded(.up)) + margin
            start = max(0, min(start, size - 1))  // never empty: the proof needs a first entry
            stop = max(start + 1, min(stop, size))
            return start..<stop
        }
    }

    /// Windows that always suffice: every partition's first `offset + limit` entries.
    public static func fallbackWindows(offset: Int, limit: Int, partitionSizes: [Int]) -> [Range<Int>] {
        partitionSizes.map { 0..<min($0, saturatingSum(max(0, offset), max(0, limit))) }
    }

    /// For the global page at ranks `offset ..< offset + limit`, the local ranks each partition
    /// contributes (a contiguous range per partition), proven from windows of keys alone; nil when
    /// the windows cannot prove it. The server asks shards for key windows first (24 bytes per
    /// key, no entry built), then for exactly these ranges, so an offset page builds `limit`
    /// entries instead of every window's.
    ///
    /// Proof. Let x be a key of window i. Its global position (entries strictly better) is
    /// the sum over partitions j of (entries of j better than x). For partition j that is
    /// `localStart_j + #(window j keys better than x)` provided (a) every entry of j before the
    /// window is better than x — true when localStart_j == 0 or x >= first_j (entries before the
    /// window are better than first_j) — and (b) no entry of j after the window is better than x —
    /// true when window j is exhausted or x <= last_j. So for the candidates x with
    /// max(first_j : localStart_j > 0) <= x <= min(last_j : j not exhausted) the position is
    /// `sum(localStart_j) + (index of x in the merged windows)`; these candidates are a
    /// contiguous run of the merged order. The page is proven when that run covers
    /// offset ..< min(offset + limit, total) (0-based; the i-th has global rank offset + i + 1),
    /// and partition j's share of the page is then the
    /// keys of window j merged at indices offset - base ..< end - base. The fallback windows (all
    /// localStart 0, each either exhausted or holding offset + limit keys) always pass.
    /// Cost: O(S * (offset - base + limit)) comparisons over the windows' keys.
    public static func pageRanges(windows: [KeyWindow], offset: Int, limit: Int) -> [Range<Int>]? {
        withPageParts(of: windows, offset: offset, limit: limit) { starts, ends in
            windows.indices.map { (windows[$0].localStart + starts[$0])..<(windows[$0].localStart + ends[$0]) }
        } ?? nil
    }

    /// Runs `body` with each run's part of the page (`starts[i] ..< ends[i]`, indices into run
    /// i; empty parts for an empty page) when the runs prove it (`pageRanges`), or returns nil.
    /// The parts live in a temporary buffer: a proof allocates nothing.
    static func withPageParts<Run: SortedRun, Result>(
        of runs: [Run], offset: Int, limit: Int,
        _ body: (UnsafeMutableBufferPointer<Int>, UnsafeMutableBufferPointer<Int>) -> Result
    ) -> Result? {
        let count = runs.count
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, 2 * count)) { buffer in
            buffer.initialize(repeating: 0)
            let starts = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
            let ends = UnsafeMutableBufferPointer(rebasing: buffer[count..<(2 * count)])
            guard provePage(runs, offset: offset, limit: limit, starts: starts, ends: ends) else { return nil }
            return body(starts, ends)
        }
    }

    /// The proof of `pageRanges` over runs of sorted keys: on success `starts`/`ends` (zeroed
    /// by the caller) hold each run's part of the page, and `ends` served as the merge's heads.
    private static func provePage<Run: SortedRun>(
        _ runs: [Run], offset: Int, limit: Int, starts: UnsafeMutableBufferPointer<Int>, ends: UnsafeMutableBufferPointer<Int>
    ) -> Bool {
        guard offset >= 0, limit > 0 else { return true }  // the page is empty
        let total = runs.reduce(0) { $0 + $1.partitionSize }
        let end = min(saturatingSum(offset, limit), total)
        if offset >= end { return true }

        var lowerBound: RankKey? = nil  // candidates must be >= this
        var upperBound: RankKey? = nil  // and <= this
        var base = 0
        for run in runs {
            base += run.localStart
            if run.localStart > 0 {
                guard run.count > 0 else { return false }
                let first = run.key(at: 0)
                if lowerBound.map({ first > $0 }) ?? true { lowerBound = first }
            }
            if run.localStart + run.count < run.partitionSize {  // not exhausted
                guard run.count > 0 else { return false }
                let last = run.key(at: run.count - 1)
                if upperBound.map({ last < $0 }) ?? true { upperBound = last }
            }
        }
        // Only the merged prefix up to `end - base` keys can matter.
        let needed = end - base
        let firstIndex = offset - base
        guard needed > 0, firstIndex >= 0 else { return false }
        var firstKey = RankKey.max
        var lastKey = RankKey.min
        if runs.count == 2 {
            // Two shards (the default on a two-core machine): a plain two-way merge.
            let (left, right) = (runs[0], runs[1])
            let (leftCount, rightCount) = (left.count, right.count)
            var (l, r) = (0, 0)
            for position in 0..<needed {
                if position == firstIndex { (starts[0], starts[1]) = (l, r) }
                let key: RankKey
                if l < leftCount && (r >= rightCount || left.key(at: l) < right.key(at: r)) {
                    key = left.key(at: l)
                    l += 1
                } else if r < rightCount {
                    key = right.key(at: r)
                    r += 1
                } else {
                    return false  // the runs hold fewer than `needed` keys
                }
                if position == firstIndex { firstKey = key }
                lastKey = key
            }
            (ends[0], ends[1]) = (l, r)
        } else {
            for position in 0..<needed {
                if position == firstIndex {
                    for index in runs.indices { starts[index] = ends[index] }
                }
                var best = -1
                var bestKey = RankKey.max
                for index in runs.indices where ends[index] < runs[index].count {
                    let candidate = runs[index].key(at: ends[index])
                    if best < 0 || candidate < bestKey {
                        best = index
                        bestKey = candidate
                    }
                }
                if best < 0 { return false }  // the runs hold fewer than `needed` keys
                if position == firstIndex { firstKey = bestKey }
                lastKey = bestKey
                ends[best] += 1
            }
        }
        if let lowerBound, firstKey < lowerBound { return false }
        if let upperBound, lastKey > upperBound { return false }
        return true
    }

    /// How many entries to fetch from each of `partitions` partitions around a page's anchor
    /// key (the key that began the same page when it was last answered), and how many of them
    /// before it.
    ///
    /// Why an anchor: the windows of `planPageWindows` are placed by rank, so they must allow
    /// for how unevenly the entries above the page split between partitions (at rank 5000 over
    /// two shards, ±71 keys each at 2 deviations), and need a second trip for the page's
    /// entries. A run placed by the page's own first key needs only the spread of the page's
    /// `limit` entries between partitions: each partition's share is binomial(limit, 1/S), and a
    /// run of `margin` entries before the key, the share plus 3 deviations, and `margin` after
    /// holds it unless the share strays past 3 deviations (~0.1% per partition) or the page
    /// moved more than `margin` entries since the key was recorded. Such runs come back as
    /// entries, so a proven page is answered in one trip; an unproven one costs that trip and
    /// then takes the windowed path.
    public static func anchoredRun(limit: Int, partitions: Int, margin: Int = 4) -> (before: Int, count: Int) {
        let limit = min(max(0, limit), 1 << 32)  // a client's limit; pages are far smaller
        guard partitions > 1 else { return (0, limit) }
        let share = 1 / Double(partitions)
        let deviation = (Double(limit) * share * (1 - share)).squareRoot()
        let expected = Int((Double(limit) * share + 3 * deviation).rounded(.up))
        return (margin, min(limit, expected) + 2 * margin)
    }

    /// Where to fetch a page again after runs around its anchor could not prove it: for each
    /// partition, a range of local ranks around where the page now stands, or nil when it moved
    /// too far for runs to be the cheaper way (then the windowed path, `planPageWindows`).
    ///
    /// The failed runs still say where the anchor stands: partition j has `c_j = localStart_j +
    /// #(run keys better than the anchor)` entries better than it (each run reaches past the
    /// anchor's place, or its partition's end), so the anchor's global position is Σ c_j and the
    /// page begins `d = offset − Σ c_j` places after it. Partition j holds about share_j · |d| of
    /// the entries between the two (share_j = size_j / total), so its part of the page begins near
    /// `c_j + d · share_j`, give or take 3 deviations of that binomial count, and spans its share
    /// of the page plus 3 deviations; `margin` more on each side. When 3 deviations of the drift
    /// exceed `maxDeviation` entries (|d| past ~1,000 over two partitions at the default), key
    /// windows read less than such wide runs of entries would build.
    public static func rerunRanges(
        after runs: [EntryRun], anchor: RankKey, offset: Int, limit: Int, margin: Int = 4, maxDeviation: Int = 48
    ) -> [Range<Int>]? {
        let total = runs.reduce(0) { saturatingSum($0, $1.partitionSize) }
        guard offset >= 0, limit > 0, total > 0, offset < total else { return nil }
        let limit = min(limit, total - offset)
        var position = 0
        var counts: [Int] = []
        counts.reserveCapacity(runs.count)
        for run in runs {
            var better = 0
            while better < run.entries.count && run.entries[better].key < anchor { better += 1 }
            counts.append(run.localStart + better)
            position += run.localStart + better
        }
        let drift = Double(offset - position)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(runs.count)
        for (run, better) in zip(runs, counts) {
            let size = run.partitionSize
            guard size > 0 else {
                ranges.append(0..<0)
                continue
            }
            let share = Double(size) / Double(total)
            let driftDeviation = 3 * (drift.magnitude * share * (1 - share)).squareRoot()
            guard driftDeviation <= Double(maxDeviation) else { return nil }
            let pageDeviation = 3 * (Double(limit) * share * (1 - share)).squareRoot()
            let centre = Double(better) + drift * share
            var start = Int((centre - driftDeviation).rounded(.down)) - margin
            var stop = Int((centre + Double(limit) * share + driftDeviation + pageDeviation).rounded(.up)) + margin
            start = max(0, min(start, size - 1))  // never empty: the proof needs a first entry
            stop = max(start + 1, min(stop, size))
            ranges.append(start..<stop)
        }
        return ranges
    }

    /// The global page at ranks `offset ..< offset + limit` from one run of entries per
    /// partition, or nil when the runs cannot prove it (`pageRanges`, on the runs' keys: the
    /// same proof as key windows, and no second fetch, since the runs hold the entries). The
    /// page is merged from the runs where they lie: its array is the one allocation.
    public static func page(from runs: [EntryRun], offset: Int, limit: Int) -> [LeaderboardEntry]? {
        withPageParts(of: runs, offset: offset, limit: limit) { heads, ends in
            var size = 0
            for index in runs.indices { size += ends[index] - heads[index] }
            var page: [LeaderboardEntry] = []
            page.reserveCapacity(min(max(0, limit), size))
            // A proven part is merged from the run's own keys, so it lies inside the run.
            appendMerged(
                lists: runs.count, heads: heads, ends: { ends[$0] }, key: { runs[$0].entries[$1].key }, entry: { runs[$0].entries[$1] },
                upTo: limit, to: &page)
            return page
        }
    }

    /// Merges each partition's `entries(before: key, limit: before)` (best first) and
    /// `entries(after: key, limit: after)` into the board's `before` nearest better entries (best
    /// first) and `after` nearest worse entries (nearest first).
    public static func mergeNeighbours(
        better: [[LeaderboardEntry]], worse: [[LeaderboardEntry]], before: Int, after: Int
    ) -> (better: [LeaderboardEntry], worse: [LeaderboardEntry]) {
        let (run, betterTaken) = neighbourRun(better: better, centre: nil, worse: worse, before: before, after: after)
        return (Array(run[..<betterTaken]), Array(run[betterTaken...]))
    }

    /// The board's run around a key in one array, best first: the `before` nearest better
    /// entries of the partitions' `better` lists (each best first, so nearest last), `centre`
    /// when given, then the `after` nearest worse of their `worse` lists (each nearest first);
    /// and how many better entries it took. One allocation: the run (an around answer builds it
    /// once). Cost O((before + after) * S).
    public static func neighbourRun(
        better: [[LeaderboardEntry]], centre: LeaderboardEntry?, worse: [[LeaderboardEntry]], before: Int, after: Int
    ) -> (run: [LeaderboardEntry], betterTaken: Int) {
        let betterWanted = min(max(0, before), better.reduce(0) { $0 + $1.count })
        let worseWanted = min(max(0, after), worse.reduce(0) { $0 + $1.count })
        var run: [LeaderboardEntry] = []
        run.reserveCapacity(betterWanted + (centre == nil ? 0 : 1) + worseWanted)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, better.count, worse.count)) { heads in
            // Better: the greatest keys first, from each list's end; reversed afterwards.
            for index in better.indices { heads[index] = better[index].count }
            while run.count < betterWanted {
                var best = -1
                for index in better.indices where heads[index] > 0 {
                    if best < 0 || better[index][heads[index] - 1].key > better[best][heads[best] - 1].key { best = index }
                }
                guard best >= 0 else { break }
                heads[best] -= 1
                run.append(better[best][heads[best]])
            }
            run.reverse()
            if let centre { run.append(centre) }
            for index in worse.indices { heads[index] = 0 }
            appendMerged(
                lists: worse.count, heads: heads, ends: { worse[$0].count }, key: { worse[$0][$1].key }, entry: { worse[$0][$1] },
                upTo: run.count + worseWanted, to: &run)
        }
        return (run, betterWanted)
    }
}
