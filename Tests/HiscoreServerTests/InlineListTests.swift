import Testing
@testable import HiscoreServer

@Suite("Inline list")
struct InlineListTests {
    @Test("holds any number of elements in order, the first two inline", arguments: [0, 1, 2, 3, 7])
    func matchesArray(count: Int) {
        let expected = (0..<count).map { $0 * 10 + 1 }
        var appended = InlineList<Int>()
        for value in expected { appended.append(value) }
        #expect(Array(appended) == expected)
        #expect(Array(InlineList(expected)) == expected)
        #expect(Array(InlineList(count: count) { $0 * 10 + 1 }) == expected)
        #expect(appended.count == count && appended.first == expected.first)
    }
}
