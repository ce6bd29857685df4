import HiscoreCore
import HiscoreWire
import NIOCore

// The fuzz harness, shared by the libFuzzer executable (Sources/hiscore-fuzz) and the regression
// tests that replay the corpus in a plain build (Tests/HiscoreWireTests/FuzzRegressionTests.swift).
/// What one fuzz input did, and every oracle it broke.
public struct FuzzReport {
    public var preface: ConnectionPreface.Check = .needMoreData
    public var framingError: FramingError?
    public var frames = 0
    public var requestsDecoded = 0
    public var responsesDecoded = 0
    /// Broken oracles; empty when the input is handled consistently.
    public var violations: [String] = []

    public init() {}
}

/// One input is a connection's byte stream: the preface check on its first bytes, then the
/// framing of the rest (after the preface when accepted, else the whole input, so mutations of the
/// preface do not hide the frames), then every frame body through every decoder, with oracles:
///   - `ConnectionPreface.check` agrees with a reference implementation and with its ByteBuffer form;
///   - `FrameParser.frames` agrees with `LengthPrefixedFrameDecoder`, fed at once and in chunks;
///   - `decodeRequest`, `decodeRequestRecoveringCallID` and the ByteBuffer form agree, and the
///     call id they report agrees with `peekCallID` (and a decoded auth token with `peekAuthToken`);
///   - a decoded request or response re-encodes to bytes that decode to an equal value, and
///     re-encoding that value gives the same bytes.
/// Each frame body is copied into its own exact-size allocation so ASan sees any over-read.
public enum FuzzHarness {
    static let maxFrameBytes = 64 * 1024

    public static func run(_ input: UnsafeRawBufferPointer) -> FuzzReport {
        var report = FuzzReport()
        func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { report.violations.append(message()) }
        }

        // 1. The preface.
        report.preface = ConnectionPreface.check(input)
        expect(report.preface == referencePrefaceCheck(input),
               "preface: check gave \(report.preface), reference \(referencePrefaceCheck(input))")
        expect(ConnectionPreface.check(ByteBuffer(bytes: input)) == report.preface,
               "preface: ByteBuffer form disagrees")
        let stream = report.preface == .accepted
            ? Array(input[ConnectionPreface.length...]) : Array(input)

        // 2. Framing: the pure parser against the NIO decoder, fed at once and in chunks.
        let parsed = Result { () throws(FramingError) in try FrameParser.frames(in: stream, maxFrameBytes: maxFrameBytes) }
        let atOnce = decodeFrames([stream], &report.violations)
        var chunks: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let length = min(1 + (chunks.count * 7 + Int(stream[offset])) % 13, stream.count - offset)
            chunks.append(Array(stream[offset..<(offset + length)]))
            offset += length
        }
        let chunked = decodeFrames(chunks, &report.violations)
        expect(atOnce.bodies == chunked.bodies && atOnce.error == chunked.error,
               "framing: chunked delivery gave \(chunked.bodies.count) frames / \(String(describing: chunked.error)), at once \(atOnce.bodies.count) / \(String(describing: atOnce.error))")
        switch parsed {
        case .success(let (bodies, remainder)):
            expect(bodies == atOnce.bodies, "framing: FrameParser and LengthPrefixedFrameDecoder split differently")
            let expectedError: FramingError? = remainder.isEmpty ? nil : .truncatedFrame(bufferedBytes: remainder.count)
            expect(atOnce.error == expectedError,
                   "framing: remainder \(remainder.count) bytes but decoder error \(String(describing: atOnce.error))")
            expect(bodies.reduce(0) { $0 + FrameParser.headerLength + $1.count } + remainder.count == stream.count,
                   "framing: frames and remainder do not add up to the stream")
        case .failure(let error):
            expect(atOnce.error == error, "framing: FrameParser threw \(error), decoder \(String(describing: atOnce.error))")
            expect(atOnce.bodies.allSatisfy { $0.count <= maxFrameBytes }, "framing: body over the maximum")
        }
        report.framingError = atOnce.error
        report.frames = atOnce.bodies.count

        // 3. Every whole frame through every decoder.
        for body in atOnce.bodies {
            checkBody(body, &report)
        }
        return report
    }

    /// The preface rule restated independently of `ConnectionPreface`.
    static func referencePrefaceCheck(_ bytes: UnsafeRawBufferPointer) -> ConnectionPreface.Check {
        let magic: [UInt8] = [0x48, 0x49, 0x53, 0x43, 0x4F, 0x52, 0x45]  // "HISCORE"
        for index in 0..<magic.count {
            guard index < bytes.count else { return .needMoreData }
            guard bytes[index] == magic[index] else { return .rejected(.wrongMagic) }
        }
        guard bytes.count > magic.count else { return .needMoreData }
        let version = bytes[magic.count]
        return version == 1 ? .accepted : .rejected(.unsupportedProtocolVersion(version))
    }

    /// Feeds `chunks` into a cumulation buffer as NIO does, decoding after each, then signals EOF.
    static func decodeFrames(
        _ chunks: [[UInt8]], _ violations: inout [String]
    ) -> (bodies: [[UInt8]], error: FramingError?) {
        var decoder = LengthPrefixedFrameDecoder(maxFrameBytes: maxFrameBytes)
        var cumulation = ByteBuffer()
        var bodies: [[UInt8]] = []
        do {
            for chunk in chunks {
                cumulation.writeBytes(chunk)
                while let frame = try decoder.decode(buffer: &cumulation) {
                    bodies.append(Array(frame.readableBytesView))
                }
                if cumulation.readableBytes >= FrameParser.headerLength + maxFrameBytes {
                    violations.append("framing: \(cumulation.readableBytes) bytes buffered with no whole frame")
                }
            }
            if let frame = try decoder.decodeLast(buffer: &cumulation, seenEOF: true) {
                violations.append("framing: decodeLast found a frame (\(frame.readableBytes) bytes) that decode missed")
            }
            return (bodies, nil)
        } catch let error as FramingError {
            return (bodies, error)
        } catch {
            violations.append("framing: decoder threw a non-FramingError: \(error)")
            return (bodies, nil)
        }
    }

    static func checkBody(_ body: [UInt8], _ report: inout FuzzReport) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: body.count, alignment: 1)
        defer { storage.deallocate() }
        storage.copyBytes(from: body)
        let bytes = UnsafeRawBufferPointer(storage)
        var violations: [String] = []
        func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { violations.append("\(message()) [body \(hex(body))]") }
        }

        let peeked = WireCodec.peekCallID(bytes)

        // Requests.
        let plain = Result { () throws(WireError) in try WireCodec.decodeRequest(bytes) }
        let recovering = Result { () throws(RejectedRequest) in try WireCodec.decodeRequestRecoveringCallID(bytes) }
        let viaBuffer = Result { () throws(WireError) in try WireCodec.decodeRequest(ByteBuffer(bytes: body)) }
        expect(viaBuffer == plain, "request: ByteBuffer form gave \(short(viaBuffer)), pointer form \(short(plain))")
        switch (plain, recovering) {
        case (.success(let envelope), .success(let recovered)):
            report.requestsDecoded += 1
            expect(envelope == recovered, "request: decodeRequestRecoveringCallID decoded a different value")
            expect(envelope.callID == (peeked ?? 0),
                   "request: decoded call id \(envelope.callID), peekCallID \(String(describing: peeked))")
            let peekedToken = WireCodec.peekAuthToken(bytes, maxBytes: .max)
            expect((peekedToken ?? "") == envelope.authToken,
                   "request: decoded auth token \(envelope.authToken.debugDescription), peekAuthToken \(String(describing: peekedToken))")
            var first = ByteBuffer()
            WireCodec.encodeRequest(envelope, into: &first)
            let again = Result { () throws(WireError) in try WireCodec.decodeRequest(first) }
            expect(again == .success(envelope),
                   "request: re-encoded \(hex(Array(first.readableBytesView))) decodes to \(short(again)), not \(short(envelope))")
            if case .success(let second) = again {
                var secondBytes = ByteBuffer()
                WireCodec.encodeRequest(second, into: &secondBytes)
                expect(secondBytes == first, "request: encoding is not stable across a round trip")
            }
            var framed = ByteBuffer()
            FrameEncoding.encodeRequestFrame(envelope, into: &framed)
            expect(Array(framed.readableBytesView) == frameHeader(first.readableBytes) + Array(first.readableBytesView),
                   "request: encodeRequestFrame differs from header + encodeRequest")
        case (.failure(let error), .failure(let rejected)):
            expect(error == rejected.reason, "request: the two decoders reject for different reasons: \(error) / \(rejected.reason)")
            expect(rejected.callID == peeked || (rejected.callID == 0 && peeked == nil),
                   "request: rejected with call id \(String(describing: rejected.callID)), peekCallID \(String(describing: peeked))")
        default:
            expect(false, "request: decodeRequest gave \(short(plain)), decodeRequestRecoveringCallID \(short(recovering))")
        }

        // Responses.
        let response = Result { () throws(WireError) in try WireCodec.decodeResponse(bytes) }
        let responseViaBuffer = Result { () throws(WireError) in try WireCodec.decodeResponse(ByteBuffer(bytes: body)) }
        expect(responseViaBuffer == response, "response: ByteBuffer form disagrees with pointer form")
        if case .success(let envelope) = response {
            report.responsesDecoded += 1
            expect(envelope.callID == (peeked ?? 0),
                   "response: decoded call id \(envelope.callID), peekCallID \(String(describing: peeked))")
            var first = ByteBuffer()
            WireCodec.encodeResponse(envelope, into: &first)
            let again = Result { () throws(WireError) in try WireCodec.decodeResponse(first) }
            expect(again == .success(envelope),
                   "response: re-encoded \(hex(Array(first.readableBytesView))) decodes to \(short(again)), not \(short(envelope))")
            if case .success(let second) = again {
                var secondBytes = ByteBuffer()
                WireCodec.encodeResponse(second, into: &secondBytes)
                expect(secondBytes == first, "response: encoding is not stable across a round trip")
            }
            var framed = ByteBuffer()
            FrameEncoding.encodeResponseFrame(envelope, into: &framed)
            expect(Array(framed.readableBytesView) == frameHeader(first.readableBytes) + Array(first.readableBytesView),
                   "response: encodeResponseFrame differs from header + encodeResponse")
        }
        report.violations += violations
    }

    static func frameHeader(_ length: Int) -> [UInt8] {
        [0, UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
         UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    static func hex(_ bytes: [UInt8], limit: Int = 256) -> String {
        let digits = bytes.prefix(limit).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
        return bytes.count > limit ? digits + "...(\(bytes.count) bytes)" : digits
    }

    static func short(_ value: some Any, limit: Int = 600) -> String {
        let text = String(describing: value)
        return text.count > limit ? String(text.prefix(limit)) + "..." : text
    }
}
