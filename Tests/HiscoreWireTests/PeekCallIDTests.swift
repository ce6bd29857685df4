import HiscoreWire
import Testing

@Suite("Reading the call id of an undecodable frame")
struct PeekCallIDTests {
    @Test("finds the call id of every valid request and response")
    func valid() {
        for envelope in Fixtures.requests {
            // protobuf-c omits a zero call_id (proto3 default).
            #expect(peekCallID(encoded(envelope)) == (envelope.callID == 0 ? nil : envelope.callID))
        }
        for envelope in Fixtures.responses {
            #expect(peekCallID(encoded(envelope)) == (envelope.callID == 0 ? nil : envelope.callID))
        }
    }

    @Test("finds the call id before a corrupt body, and the last one when repeated")
    func corruptBody() {
        var writer = ProtobufWriter()
        writer.varintField(1, 300)
        writer.varintField(2, 5)
        writer.bytesField(3, Array("token".utf8))
        writer.varintField(1, 301)  // last one wins, as in protobuf
        writer.bytes += [0x52, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]  // method 10 claiming 4 GiB
        #expect(peekCallID(writer.bytes) == 301)
        #expect(decodeRequestRecoveringCallID(writer.bytes).failureCallID == 301)
    }

    @Test("skips fixed-width fields and stops at groups and invalid wire types")
    func wireTypes() {
        var writer = ProtobufWriter()
        writer.varint(5 << 3 | 1)
        writer.bytes += [1, 2, 3, 4, 5, 6, 7, 8]
        writer.varint(6 << 3 | 5)
        writer.bytes += [1, 2, 3, 4]
        writer.varintField(1, 9)
        #expect(peekCallID(writer.bytes) == 9)
        #expect(peekCallID(writer.bytes + [0x0B, 0x08, 0x01]) == 9)  // start-group: stop, keep 9
        #expect(peekCallID([0x0F, 0x08, 0x01]) == nil)  // wire type 7
    }

    @Test("truncated input yields the call id only if it was complete")
    func truncated() {
        let bytes = encoded(RequestEnvelope(callID: .max, method: .describeBoard(boardID: "season-1")))
        #expect(peekCallID(bytes) == .max)
        // Key (1 byte) + 10-byte varint.
        for length in 0..<11 { #expect(peekCallID(Array(bytes.prefix(length))) == nil) }
        for length in 11...bytes.count { #expect(peekCallID(Array(bytes.prefix(length))) == .max) }
    }

    @Test("overlong varints and garbage never trap")
    func garbage() {
        #expect(peekCallID([]) == nil)
        #expect(peekCallID([0x08]) == nil)
        #expect(peekCallID([0x08] + Array(repeating: 0xFF, count: 20)) == nil)
        #expect(peekCallID(Array(repeating: 0xFF, count: 64)) == nil)
        #expect(peekCallID([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) != nil)
        var generator = seededGenerator(for: "PeekCallIDTests.garbage")
        for _ in 0..<50_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = peekCallID(bytes)
        }
    }
}

@Suite("Reading the auth token of a frame before decoding it")
struct PeekAuthTokenTests {
    static func peek(_ bytes: [UInt8], maxBytes: Int = 4096) -> String? {
        bytes.withUnsafeBytes { WireCodec.peekAuthToken($0, maxBytes: maxBytes) }
    }

    @Test("finds the token of every valid request, and none where there is none")
    func valid() {
        for envelope in Fixtures.requests {
            #expect(Self.peek(encoded(envelope)) == (envelope.authToken.isEmpty ? nil : envelope.authToken))
        }
        var withToken = RequestEnvelope(callID: 7, method: .ping(payload: []))
        withToken.authToken = "writer-key-0123456789"
        #expect(Self.peek(encoded(withToken)) == "writer-key-0123456789")
        #expect(Self.peek(encoded(withToken), maxBytes: 8) == nil)  // too long to be one
    }

    @Test("finds the token before a corrupt body; garbage and truncation never trap")
    func corruptAndGarbage() {
        var writer = ProtobufWriter()
        writer.varintField(1, 300)
        writer.bytesField(3, Array("token".utf8))
        writer.bytes += [0x52, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]  // method 10 claiming 4 GiB
        #expect(Self.peek(writer.bytes) == "token")
        #expect(Self.peek(Array(writer.bytes.prefix(6))) == nil)  // the token cut short
        #expect(Self.peek([0x1A, 0x02, 0xFF, 0xFE]) == nil)  // not UTF-8
        // Ends at a NUL byte, as protobuf-c's decoded (C string) token does.
        #expect(Self.peek([0x1A, 0x04, 0x6B, 0x65, 0x00, 0x79]) == "ke")
        var generator = seededGenerator(for: "PeekAuthTokenTests.garbage")
        for _ in 0..<50_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = Self.peek(bytes)
        }
    }
}

extension Result where Failure == RejectedRequest {
    var failureCallID: UInt64? {
        if case .failure(let rejection) = self { return rejection.callID }
        return nil
    }
}
