import Testing
@testable import HiscoreStorage
import HiscoreTestSupport

@Suite struct CRCAndRecordTests {
    @Test func crc32cKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func crc32cUpdateChains() {
        var rng = SplitMix64(seed: 42)
        let bytes = (0..<1000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = CRC32C.checksum(bytes)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let chained = bytes.withUnsafeBytes {
                CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: $0[..<split])),
                    UnsafeRawBufferPointer(rebasing: $0[split...]))
            }
            #expect(chained == whole, "split at \(split)")
        }
    }

    @Test func everyRecordKindEncodesAndDecodes() {
        for record in everyKind {
            var bytes: [UInt8] = []
            record.encode(into: &bytes)
            #expect(bytes.count <= record.encodedSizeBound)
            let decoded = bytes.withUnsafeBytes { LogRecord.decode($0) }
            #expect(decoded == record)
            // Every strict prefix is malformed (never silently decodes to something else).
            for length in 0..<bytes.count {
                #expect(bytes.withUnsafeBytes { LogRecord.decode(UnsafeRawBufferPointer(rebasing: $0[..<length])) } == nil)
            }
        }
    }
}
