import HiscoreWire
import NIOCore
import Testing

@testable import HiscoreServer
import HiscoreTestSupport

@Suite("Inbound frames: a connection's bytes split into the preface and frames")
struct InboundFramesTests {
    /// The preface, then `count` ping requests of growing size; and where each message ends.
    private static func stream(frames count: Int) -> (bytes: [UInt8], bodies: [[UInt8]]) {
        var bytes = ConnectionPreface.bytes
        var bodies: [[UInt8]] = []
        for call in 0..<count {
            var frame = ByteBuffer()
            FrameEncoding.encodeRequestFrame(
                RequestEnvelope(callID: UInt64(call + 1), method: .ping(payload: Array(repeating: UInt8(call & 0xff), count: call * 13))),
                into: &frame)
            let frameBytes = Array(frame.readableBytesView)
            bodies.append(Array(frameBytes.dropFirst(FrameParser.headerLength)))
            bytes += frameBytes
        }
        return (bytes, bodies)
    }

    private static func describe(_ message: ServerInbound) -> [UInt8]? {
        switch message {
        case .preface: return nil
        case .frame(let body): return Array(body.readableBytesView)
        }
    }

    @Test("any cutting of the bytes into reads yields the same messages, and nothing is held at a boundary")
    func anyCuts() throws {
        let seed = DifferentialServerTests.seed()
        var random = SplitMix64(seed: seed)
        let (bytes, bodies) = Self.stream(frames: 40)
        for round in 0..<200 {
            let frames = InboundFrames(maxFrameBytes: 1 << 20)
            var seen: [[UInt8]?] = []
            var offset = 0
            while offset < bytes.count {
                // Mostly small cuts (inside a header or the preface), sometimes whole frames.
                let length = random.next(below: 4) == 0 ? Int(random.next(below: 400)) + 1 : Int(random.next(below: 7)) + 1
                let end = min(bytes.count, offset + length)
                try frames.feed(ByteBuffer(bytes: bytes[offset..<end]), stopped: { false }, chunk: {}) { seen.append(Self.describe($0)) }
                offset = end
            }
            #expect(seen.count == bodies.count + 1, "seed \(seed) round \(round)")
            #expect(seen.first == .some(nil), "the preface first; seed \(seed) round \(round)")
            #expect(Array(seen.dropFirst()) == bodies.map { Optional($0) }, "seed \(seed) round \(round)")
            #expect(frames.heldBytes == 0, "the last read ended on a frame boundary; seed \(seed)")
        }
    }

    @Test("bytes fed while a message is being handled are split after the current read, in order")
    func reentrantFeed() throws {
        let (bytes, bodies) = Self.stream(frames: 6)
        let frames = InboundFrames(maxFrameBytes: 1 << 20)
        // The first read ends 3 bytes into the third frame; its rest (and all later frames) is
        // fed from inside the handling of the first frame, as a nested read would.
        let firstCut = ConnectionPreface.bytes.count + FrameParser.headerLength * 2 + bodies[0].count + bodies[1].count + 3
        var seen: [[UInt8]?] = []
        var chunks = 0
        var nested = false
        try frames.feed(ByteBuffer(bytes: bytes[..<firstCut]), stopped: { false }, chunk: { chunks += 1 }) { message in
            seen.append(Self.describe(message))
            if seen.count == 2 && !nested {
                nested = true
                try frames.feed(ByteBuffer(bytes: bytes[firstCut...]), stopped: { false }, chunk: { chunks += 1 }) { _ in
                    Issue.record("a nested feed handled a message itself")
                }
                #expect(seen.count == 2, "the nested bytes wait for the current read")
            }
        }
        #expect(chunks == 2, "the queued bytes are a read of their own")
        #expect(seen.first == .some(nil))
        #expect(Array(seen.dropFirst()) == bodies.map { Optional($0) })
        #expect(frames.heldBytes == 0)
    }

    @Test("a declared length over the maximum fails at its header, before any of the body")
    func oversizedHeader() {
        let frames = InboundFrames(maxFrameBytes: 1024)
        var header = ByteBuffer(bytes: ConnectionPreface.bytes)
        header.writeInteger(UInt8(0))
        header.writeInteger(UInt32(1025))
        var messages = 0
        #expect(throws: FramingError.self) {
            try frames.feed(header, stopped: { false }, chunk: {}) { _ in messages += 1 }
        }
        #expect(messages == 1, "the preface was handled first")
    }

    @Test("a stop after a message leaves the rest of the read unhandled and nothing held")
    func stopEndsTheRead() throws {
        let (bytes, _) = Self.stream(frames: 4)
        let frames = InboundFrames(maxFrameBytes: 1 << 20)
        var seen = 0
        try frames.feed(ByteBuffer(bytes: bytes), stopped: { seen >= 2 }, chunk: {}) { _ in seen += 1 }
        #expect(seen == 2)
        #expect(frames.heldBytes == 0)
    }
}
