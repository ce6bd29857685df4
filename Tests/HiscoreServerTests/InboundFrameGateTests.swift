import HiscoreCore
import HiscoreWire
import NIOCore
import Testing

@testable import HiscoreServer
import HiscoreTestSupport

/// The large-frame gate of `InboundFrames`: a frame over `gatedFrameBytes` is shown to the
/// caller once that many of its bytes are in; a refused one is dropped as the rest arrives.
/// Streams of pings of random sizes, cut at random (single bytes to 70 KB), with a seed.
@Suite("InboundFrames: the large-frame gate")
struct InboundFrameGateTests {
    /// Preface, then frames: small pings, and large ones (odd call ids large). Large ones with
    /// call id % 4 == 1 are refused by the gate; == 3 admitted.
    static func stream(count: Int, random: inout SplitMix64) -> (bytes: [UInt8], expected: [UInt64], refused: [UInt64]) {
        var bytes = ConnectionPreface.bytes
        var expected: [UInt64] = []
        var refused: [UInt64] = []
        for call in 1...UInt64(count) {
            let large = call % 2 == 1
            let size = large ? 16 << 10 + Int(random.next(below: 40_000)) : Int(random.next(below: 300))
            var frame = ByteBuffer()
            FrameEncoding.encodeRequestFrame(
                RequestEnvelope(callID: call, method: .ping(payload: Array(repeating: UInt8(call & 0xff), count: size))), into: &frame)
            bytes += Array(frame.readableBytesView)
            let body = frame.readableBytes - FrameParser.headerLength
            if body > InboundFrames.gatedFrameBytes && call % 4 == 1 { refused.append(call) } else { expected.append(call) }
        }
        return (bytes, expected, refused)
    }

    /// The gate these tests use: large frames with call id % 4 == 1 are refused (and noted).
    static func admittingAllBut(_ refusals: inout [UInt64], _ prefix: UnsafeRawBufferPointer) -> Bool {
        let id = WireCodec.peekCallID(prefix) ?? 0
        guard id % 4 == 1 else { return true }
        refusals.append(id)
        return false
    }

    /// The call id of a frame split off (nil for the preface).
    static func callID(_ message: ServerInbound) -> UInt64? {
        guard case .frame(let body) = message else { return nil }
        return body.withUnsafeReadableBytes { WireCodec.peekCallID($0) } ?? 0
    }

    @Test("random cuts: refused frames are skipped exactly, the others delivered in order, nothing left buffered")
    func randomCuts() throws {
        let seed = DifferentialServerTests.seed()
        print("InboundFrameGateTests.randomCuts seed \(seed) (HISCORE_TEST_SEED)")
        var random = SplitMix64(seed: seed)
        for round in 0..<300 {
            let (bytes, expected, refused) = Self.stream(count: 12, random: &random)
            let frames = InboundFrames(maxFrameBytes: 1 << 20)
            var seen: [UInt64] = []
            var refusals: [UInt64] = []
            var offset = 0
            while offset < bytes.count {
                let pick = random.next(below: 5)
                let length = pick == 0 ? Int(random.next(below: 7)) + 1 : pick == 1 ? Int(random.next(below: 70_000)) + 1 : Int(random.next(below: 9000)) + 1
                let end = min(bytes.count, offset + length)
                try frames.feed(
                    ByteBuffer(bytes: bytes[offset..<end]), stopped: { false },
                    admitsLargeFrame: { prefix, _ in Self.admittingAllBut(&refusals, prefix) },
                    chunk: {}
                ) { message in
                    if let id = Self.callID(message) { seen.append(id) }
                }
                offset = end
            }
            // Frames that arrived complete in one read are not gated: they reach `message`.
            let delivered = Set(seen)
            let allIDs = Set(expected + refused)
            #expect(delivered.union(Set(refusals)) == allIDs, "round \(round)")
            #expect(delivered.isDisjoint(with: Set(refusals)), "round \(round)")
            #expect(Set(refusals).isSubset(of: Set(refused)), "round \(round)")
            #expect(seen == seen.sorted(), "round \(round)")
            #expect(refusals.count == Set(refusals).count, "a frame refused twice, round \(round)")
            #expect(frames.heldBytes == 0, "round \(round)")
        }
    }

    /// While frames are held (the client does not read its answers), the rest of a read event's
    /// bytes were appended unchecked: a stranger's large frame was buffered whole after all.
    @Test("held frames: the unfinished frame behind them is gated too, and dropped unbuffered")
    func gatedWhileHeld() throws {
        var bytes = ConnectionPreface.bytes
        var ping = ByteBuffer()
        FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 2, method: .ping(payload: [1])), into: &ping)
        bytes += Array(ping.readableBytesView)
        var large = ByteBuffer()
        FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 1, method: .ping(payload: Array(repeating: 1, count: 900_000))), into: &large)
        let frames = InboundFrames(maxFrameBytes: 1 << 20)
        var held = false
        var refusals = 0
        let admit: (UnsafeRawBufferPointer, Int) -> Bool = { _, _ in refusals += 1; return false }
        try frames.feed(ByteBuffer(bytes: bytes), stopped: { false }, held: { held }, admitsLargeFrame: admit, chunk: {}) { _ in held = true }
        // Reads keep coming in the same read event after the hold began.
        let largeBytes = Array(large.readableBytesView)
        var mostHeld = 0
        let chunks = 10  // 655,360 of the frame's 900,012 bytes
        for start in stride(from: 0, to: chunks * 65536, by: 65536) {
            try frames.feed(ByteBuffer(bytes: largeBytes[start..<(start + 65536)]), stopped: { false }, held: { held }, admitsLargeFrame: admit, chunk: {}) { _ in }
            mostHeld = max(mostHeld, frames.heldBytes)
        }
        #expect(refusals == 1)
        #expect(mostHeld < 2 * 65536, "held \(mostHeld) bytes of a refused frame")
        // Released, the rest of the refused frame is dropped and the connection goes on.
        held = false
        var after: [UInt64] = []
        var released: [UInt64] = []
        try frames.feed(ByteBuffer(bytes: largeBytes[(chunks * 65536)...]), stopped: { false }, held: { held }, admitsLargeFrame: admit, chunk: {}) { message in
            if let id = Self.callID(message) { released.append(id) }
        }
        #expect(released == [2], "the held ping, then nothing of the refused frame: \(released)")
        var next = ByteBuffer()
        FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 3, method: .ping(payload: [3])), into: &next)
        try frames.feed(next, stopped: { false }, held: { held }, admitsLargeFrame: admit, chunk: {}) { message in
            if let id = Self.callID(message) { after.append(id) }
        }
        #expect(after == [3] && frames.heldBytes == 0, "\(after), \(frames.heldBytes) bytes held")
    }

    @Test("bytes fed while a message is handled (a TLS handler's plaintext) are gated in order too")
    func nestedFeeds() throws {
        let seed = DifferentialServerTests.seed()
        print("InboundFrameGateTests.nestedFeeds seed \(seed) (HISCORE_TEST_SEED)")
        var random = SplitMix64(seed: seed)
        for round in 0..<200 {
            let (bytes, _, _) = Self.stream(count: 8, random: &random)
            let frames = InboundFrames(maxFrameBytes: 1 << 20)
            var seen: [UInt64] = []
            var refusals: [UInt64] = []
            var pending: [ArraySlice<UInt8>] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + Int(random.next(below: 12_000)) + 1)
                pending.append(bytes[offset..<end])
                offset = end
            }
            let admit: (UnsafeRawBufferPointer, Int) -> Bool = { prefix, _ in Self.admittingAllBut(&refusals, prefix) }
            func handle(_ message: ServerInbound) throws {
                if let id = Self.callID(message) { seen.append(id) }
                // Sometimes a nested read arrives while handling.
                if !pending.isEmpty && random.next(below: 2) == 0 {
                    let next = pending.removeFirst()
                    try frames.feed(ByteBuffer(bytes: next), stopped: { false }, admitsLargeFrame: admit, chunk: {}, message: handle)
                }
            }
            while !pending.isEmpty {
                let next = pending.removeFirst()
                try frames.feed(ByteBuffer(bytes: next), stopped: { false }, admitsLargeFrame: admit, chunk: {}, message: handle)
            }
            #expect(Set(seen).union(Set(refusals)) == Set(1...8), "round \(round) seen \(seen) refused \(refusals)")
            #expect(seen == seen.sorted(), "round \(round)")
            #expect(frames.heldBytes == 0, "round \(round)")
        }
    }
}

