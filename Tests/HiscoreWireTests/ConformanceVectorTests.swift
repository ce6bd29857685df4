import Foundation
import HiscoreWire
import NIOCore
import Testing

/// The shared conformance vectors (clients/testdata/vectors.txt, also used by the Python and C
/// clients): every frame decodes with the Swift wire layer and re-encodes to the identical bytes.
@Suite("Conformance vectors shared with the Python and C clients")
struct ConformanceVectorTests {
    struct Vector {
        let name: String
        let type: String
        let bytes: [UInt8]
    }

    static func vectors() throws -> [Vector] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("clients/testdata/vectors.txt"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#") else { return nil }
            let fields = line.split(separator: " ")
            guard fields.count == 3 else { return nil }
            var bytes: [UInt8] = []
            var hex = Substring(fields[2])
            while hex.count >= 2 {
                guard let byte = UInt8(hex.prefix(2), radix: 16) else { return nil }
                bytes.append(byte)
                hex = hex.dropFirst(2)
            }
            return Vector(name: String(fields[0]), type: String(fields[1]), bytes: bytes)
        }
    }

    /// Vectors that spell out a default value explicitly (an offset of 0 in its oneof, limits equal
    /// to the defaults). Swift values carry no field presence, so the Swift encoder writes the
    /// canonical form (defaults left out): these must decode to the same values and re-encode to a
    /// frame that decodes identically, not to the same bytes.
    static let explicitDefaults: Set<String> = ["request_top_offset_zero", "response_create_board", "response_describe_board"]

    @Test("every vector round-trips byte for byte")
    func roundTrip() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count >= 60)
        for vector in vectors {
            switch vector.type {
            case "preface":
                #expect(vector.bytes == ConnectionPreface.bytes, "\(vector.name)")
            case "hiscore.v1.Request", "hiscore.v1.Response":
                // A vector is a whole frame: flag byte 0, big-endian length, body.
                #expect(vector.bytes.count >= 5 && vector.bytes[0] == 0, "\(vector.name)")
                let length = vector.bytes[1..<5].reduce(0) { $0 << 8 | Int($1) }
                #expect(length == vector.bytes.count - 5, "\(vector.name)")
                let body = Array(vector.bytes[5...])
                var encoded = ByteBuffer()
                var sameMeaning = true
                if vector.type == "hiscore.v1.Request" {
                    let request = try body.withUnsafeBytes { try WireCodec.decodeRequest($0) }
                    FrameEncoding.encodeRequestFrame(request, into: &encoded)
                    let again = try Array(encoded.readableBytesView.dropFirst(5)).withUnsafeBytes { try WireCodec.decodeRequest($0) }
                    sameMeaning = again == request
                } else {
                    let response = try body.withUnsafeBytes { try WireCodec.decodeResponse($0) }
                    FrameEncoding.encodeResponseFrame(response, into: &encoded)
                    let again = try Array(encoded.readableBytesView.dropFirst(5)).withUnsafeBytes { try WireCodec.decodeResponse($0) }
                    sameMeaning = again == response
                }
                #expect(sameMeaning, "\(vector.name)")
                if !Self.explicitDefaults.contains(vector.name) {
                    #expect(Array(encoded.readableBytesView) == vector.bytes, "\(vector.name)")
                }
            default:
                Issue.record("unknown vector type \(vector.type) in \(vector.name)")
            }
        }
    }
}
