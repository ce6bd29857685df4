import HiscoreWire
import NIOCore
import Testing

@Suite("Wire arena")
struct WireArenaTests {
    @Test("a message bigger than the arena's chunk encodes and decodes, and the arena keeps working")
    func growsAndShrinks() throws {
        let arena = WireArena(initialCapacity: 256)
        let big = ResponseEnvelope(
            callID: 1,
            result: .top(TopResponse(entries: (0..<5_000).map { Fixtures.entry("p\($0)") }, nextCursor: [], boardSize: 5_000)))
        let small = Fixtures.responses[0]
        for envelope in [big, small, big, small] {
            var buffer = ByteBuffer()
            WireCodec.encodeResponse(envelope, into: &buffer, arena: arena)
            #expect(try WireCodec.decodeResponse(buffer, arena: arena) == envelope)
        }
    }

    @Test("each thread gets its own arena")
    func perThread() async {
        let main = ObjectIdentifier(WireArena.forCurrentThread)
        #expect(main == ObjectIdentifier(WireArena.forCurrentThread))
        let other = await Task.detached { () -> Bool in
            // The detached task may land on the same pool thread; either way it must be usable.
            var buffer = ByteBuffer()
            WireCodec.encodeRequest(Fixtures.requests[0], into: &buffer)
            return (try? WireCodec.decodeRequest(buffer)) == Fixtures.requests[0]
        }.value
        #expect(other)
    }
}
