import HiscoreWire
import NIOCore
import Testing

@Suite("Length-prefixed frame decoding")
struct FrameDecoderTests {
    static func frame(_ body: [UInt8], flags: UInt8 = 0) -> [UInt8] {
        let length = UInt32(body.count)
        return [flags, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
    }

    /// Feeds `chunks` one at a time into a cumulation buffer, decoding after each, as
    /// NIO's processors do. Returns the frames in order.
    static func decodeAll(_ chunks: [[UInt8]], maxFrameBytes: Int = 1024) throws -> (frames: [[UInt8]], leftover: Int) {
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: maxFrameBytes)
        var cumulation = ByteBuffer()
        var frames: [[UInt8]] = []
        for chunk in chunks {
            cumulation.writeBytes(chunk)
            while let frame = try decoder.decode(buffer: &cumulation) {
                frames.append(Array(frame.readableBytesView))
            }
            #expect(cumulation.readableBytes <= FrameParser.headerLength + maxFrameBytes)
        }
        return (frames, cumulation.readableBytes)
    }

    @Test("byte-by-byte delivery yields the same frames")
    func byteByByte() throws {
        let bodies: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 300), [0]]
        let stream = bodies.flatMap { Self.frame($0) }
        let result = try Self.decodeAll(stream.map { [$0] })
        #expect(result.frames == bodies)
        #expect(result.leftover == 0)
    }

    @Test("several frames in one read, then a partial one")
    func manyInOneRead() throws {
        let bodies: [[UInt8]] = (0..<50).map { Array(repeating: UInt8($0), count: $0) }
        let partial = Array(Self.frame([9, 9, 9, 9]).prefix(7))
        let result = try Self.decodeAll([bodies.flatMap { Self.frame($0) } + partial])
        #expect(result.frames == bodies)
        #expect(result.leftover == 7)
    }

    @Test("random splits of a stream yield the same frames")
    func randomSplits() throws {
        var generator = seededGenerator(for: "FrameDecoderTests.randomSplits")
        let bodies = Fixtures.requests.map(encoded).filter { $0.count <= 1024 }
        let stream = bodies.flatMap { Self.frame($0) }
        for _ in 0..<50 {
            var chunks: [[UInt8]] = []
            var index = 0
            while index < stream.count {
                let length = min(Int.random(in: 1...200, using: &generator), stream.count - index)
                chunks.append(Array(stream[index..<(index + length)]))
                index += length
            }
            #expect(try Self.decodeAll(chunks).frames == bodies)
        }
    }

    @Test("a zero-length frame is an empty body (an all-defaults message)")
    func zeroLength() throws {
        let result = try Self.decodeAll([Self.frame([])])
        #expect(result.frames == [[]])
        #expect(try decodeRequest(result.frames[0]) == RequestEnvelope(callID: 0, method: nil))
    }

    @Test("a nonzero flag byte is refused as soon as the header is in", arguments: [1, 2, 0x80, 0xFF] as [UInt8])
    func flagByte(flags: UInt8) {
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: 1024)
        var buffer = ByteBuffer(bytes: Array(Self.frame([1, 2, 3], flags: flags).prefix(5)))
        #expect(throws: FramingError.compressedFrameNotSupported(flags: flags)) { try decoder.decode(buffer: &buffer) }
    }

    @Test("a declared length of 4 GiB - 1 is refused from the header alone")
    func hugeDeclaredLength() {
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: 4 << 20)
        var buffer = ByteBuffer(bytes: [0, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: FramingError.frameTooLarge(declared: UInt32.max, max: 4 << 20)) { try decoder.decode(buffer: &buffer) }
        #expect(FramingError.frameTooLarge(declared: UInt32.max, max: 4 << 20).status.code == .resourceExhausted)
    }

    @Test("exactly the maximum is accepted, one more byte is refused")
    func maximum() throws {
        let max = 1000
        let atMax = try Self.decodeAll([Self.frame(Array(repeating: 1, count: max))], maxFrameBytes: max)
        #expect(atMax.frames.map(\.count) == [max])
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: max)
        var overMax = ByteBuffer(bytes: Self.frame(Array(repeating: 1, count: max + 1)).prefix(5))
        #expect(throws: FramingError.frameTooLarge(declared: UInt32(max + 1), max: max)) { try decoder.decode(buffer: &overMax) }
        var zeroMax = LengthPrefixedFrameDecoder(maxFrameBytes: 0)
        var empty = ByteBuffer(bytes: Self.frame([]))
        #expect(try zeroMax.decode(buffer: &empty)?.readableBytes == 0)
    }

    @Test("fewer than 5 header bytes wait for more")
    func partialHeader() throws {
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: 16)
        var buffer = ByteBuffer(bytes: [0, 0xFF, 0xFF, 0xFF])
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 4)
    }

    @Test("end of stream inside a frame is reported; at a boundary it is not")
    func endOfStream() throws {
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: 16)
        var partial = ByteBuffer(bytes: Self.frame([1, 2, 3]).prefix(6))
        #expect(throws: FramingError.truncatedFrame(bufferedBytes: 6)) { try decoder.decodeLast(buffer: &partial, seenEOF: true) }
        var whole = ByteBuffer(bytes: Self.frame([1]))
        #expect(try decoder.decodeLast(buffer: &whole, seenEOF: true).map { Array($0.readableBytesView) } == [1])
        #expect(try decoder.decodeLast(buffer: &whole, seenEOF: true) == nil)
    }

    @Test("the plain FrameParser agrees with the NIO decoder")
    func plainParser() throws {
        let bodies: [[UInt8]] = [[1], [], [2, 3]]
        let stream: [UInt8] = bodies.flatMap { Self.frame($0) } + [0, 0, 0]
        let parsed = try FrameParser.frames(in: stream, maxFrameBytes: 8)
        #expect(parsed.bodies == bodies)
        #expect(parsed.remainder == [0, 0, 0])
        #expect(throws: FramingError.frameTooLarge(declared: 9, max: 8)) {
            try FrameParser.frames(in: Self.frame(Array(repeating: 0, count: 9)), maxFrameBytes: 8)
        }
    }

    @Test("frames written by FrameEncoding decode back to the envelopes")
    func encodeThenDecode() throws {
        var buffer = ByteBuffer()
        for envelope in Fixtures.requests { FrameEncoding.encodeRequestFrame(envelope, into: &buffer) }
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: 1 << 20)
        var decoded: [RequestEnvelope] = []
        while let frame = try decoder.decode(buffer: &buffer) { decoded.append(try WireCodec.decodeRequest(frame)) }
        #expect(decoded == Fixtures.requests)
        #expect(buffer.readableBytes == 0)

        var responses = ByteBuffer()
        for envelope in Fixtures.responses { FrameEncoding.encodeResponseFrame(envelope, into: &responses) }
        var decodedResponses: [ResponseEnvelope] = []
        while let frame = try decoder.decode(buffer: &responses) { decodedResponses.append(try WireCodec.decodeResponse(frame)) }
        #expect(decodedResponses == Fixtures.responses)
    }

    @Test("writeFrame back-patches the body length")
    func writeFrame() {
        var buffer = ByteBuffer(bytes: [0xAA])
        FrameEncoding.writeFrame(into: &buffer) { $0.writeBytes([1, 2, 3, 4, 5, 6]) }
        FrameEncoding.writeFrame(into: &buffer) { _ in }
        #expect(Array(buffer.readableBytesView) == [0xAA] + Self.frame([1, 2, 3, 4, 5, 6]) + Self.frame([]))
    }
}
