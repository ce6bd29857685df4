import HiscoreCore

/// A list that keeps its first two elements inline and only the rest in an array. The keys a
/// rank or a submit counts around (one or two) and the counts that come back travel between
/// shards inside the operation and result values, so the common calls allocate nothing for them.
struct InlineList<Element: Sendable>: RandomAccessCollection, Sendable {
    private var element0: Element?
    private var element1: Element?
    private var rest: [Element] = []
    private(set) var count = 0

    init() {}

    init(_ element: Element) {
        append(element)
    }

    init<Elements: Sequence>(_ elements: Elements) where Elements.Element == Element {
        for element in elements { append(element) }
    }

    /// `count` elements, the i-th being `make(i)`.
    init(count: Int, _ make: (Int) -> Element) {
        for index in 0..<Swift.max(0, count) { append(make(index)) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(position: Int) -> Element {
        precondition(position >= 0 && position < count, "InlineList index \(position) out of 0..<\(count)")
        switch position {
        case 0: return element0.unsafelyUnwrapped
        case 1: return element1.unsafelyUnwrapped
        default: return rest[position - 2]
        }
    }

    mutating func append(_ element: Element) {
        switch count {
        case 0: element0 = element
        case 1: element1 = element
        default: rest.append(element)
        }
        count += 1
    }
}

/// Keys whose better-counts a call asks each shard for.
typealias CountKeys = InlineList<RankKey>
/// A shard's counts, one per key asked.
typealias CountList = InlineList<Int>
