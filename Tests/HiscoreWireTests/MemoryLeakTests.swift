import CJemalloc
import HiscoreWire
import NIOCore
import Testing

@Suite("No leaks in the codec")
struct MemoryLeakTests {
    /// Net bytes allocated minus freed by the calling thread, from jemalloc's per-thread counters.
    /// Per-thread rather than `stats.allocated`, because Swift Testing runs other suites in
    /// parallel and their allocations would show up in the process-wide figure.
    static func threadNetAllocatedBytes() -> Int64 {
        func read(_ name: String) -> UInt64 {
            var value: UInt64 = 0
            var size = MemoryLayout<UInt64>.size
            let status = mallctl(name, &value, &size, nil, 0)
            precondition(status == 0, "mallctl(\(name)) failed: \(status)")
            return value
        }
        return Int64(bitPattern: read("thread.allocated") &- read("thread.deallocated"))
    }

    /// The process-wide figure, refreshed by bumping the stats epoch (logged for reference).
    static func processAllocatedBytes() -> Int {
        var oldEpoch: UInt64 = 0
        var newEpoch: UInt64 = 1
        var epochSize = MemoryLayout<UInt64>.size
        _ = mallctl("epoch", &oldEpoch, &epochSize, &newEpoch, MemoryLayout<UInt64>.size)
        var allocated = 0
        var size = MemoryLayout<Int>.size
        _ = mallctl("stats.allocated", &allocated, &size, nil, 0)
        return allocated
    }

    @Test("jemalloc is the allocator these counters measure")
    func jemallocIsActive() {
        let before = Self.threadNetAllocatedBytes()
        let block = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        let during = Self.threadNetAllocatedBytes()
        block.deallocate()
        #expect(during - before >= 1 << 20)
    }

    @Test("200,000 request and response round trips do not grow the heap")
    func roundTrips() throws {
        let request = RequestEnvelope(
            callID: 7, deadlineMillis: 100, authToken: "token",
            method: .submitBatch(Array(Fixtures.submits.prefix(2))))
        let response = ResponseEnvelope(
            callID: 7, status: Status(.ok),
            result: .top(TopResponse(entries: Array(Fixtures.edgeEntries.prefix(4)), nextCursor: [1, 2], boardSize: 9)))
        var buffer = ByteBufferAllocator().buffer(capacity: 4096)

        func roundTrip() throws {
            buffer.clear()
            WireCodec.encodeRequest(request, into: &buffer)
            _ = try WireCodec.decodeRequest(buffer)
            buffer.clear()
            WireCodec.encodeResponse(response, into: &buffer)
            _ = try WireCodec.decodeResponse(buffer)
        }

        for _ in 0..<1_000 { try roundTrip() }  // warm-up: the thread's arena, lazily built metadata
        let processBefore = Self.processAllocatedBytes()
        let before = Self.threadNetAllocatedBytes()
        for _ in 0..<200_000 { try roundTrip() }
        let growth = Self.threadNetAllocatedBytes() - before
        let processGrowth = Self.processAllocatedBytes() - processBefore
        print("MemoryLeakTests: thread heap growth \(growth) bytes; process-wide \(processGrowth) bytes")
        #expect(growth < 1 << 20, "heap grew by \(growth) bytes over 200,000 round trips")
    }

    @Test("decode failures release everything too")
    func failures() {
        let invalid = ProtobufWriter.message { request in
            request.varintField(1, 3)
            request.messageField(17) { body in body.messageField(1) { $0.int32Field(2, 7) } }
        }
        let truncated = Array(encoded(Fixtures.requests[1]).dropLast())
        for _ in 0..<1_000 {
            _ = decodeRequestRecoveringCallID(invalid)
            _ = decodeRequestRecoveringCallID(truncated)
        }
        let before = Self.threadNetAllocatedBytes()
        for _ in 0..<50_000 {
            _ = decodeRequestRecoveringCallID(invalid)
            _ = decodeRequestRecoveringCallID(truncated)
        }
        let growth = Self.threadNetAllocatedBytes() - before
        #expect(growth < 1 << 20, "heap grew by \(growth) bytes over 100,000 failed decodes")
    }
}
