import HiscoreWire
import NIOCore
import Testing

@Suite("Connection preface")
struct ConnectionPrefaceTests {
    @Test("the preface is HISCORE and version 1")
    func bytes() {
        #expect(ConnectionPreface.bytes == [0x48, 0x49, 0x53, 0x43, 0x4F, 0x52, 0x45, 0x01])
        #expect(ConnectionPreface.check(ConnectionPreface.bytes) == .accepted)
        #expect(ConnectionPreface.check(ByteBuffer(bytes: ConnectionPreface.bytes + [0, 0, 0])) == .accepted)
    }

    @Test("every proper prefix needs more data")
    func prefixes() {
        for length in 0..<ConnectionPreface.length {
            #expect(ConnectionPreface.check(ConnectionPreface.bytes.prefix(length)) == .needMoreData)
        }
    }

    @Test("a wrong magic is refused at the first differing byte")
    func wrongMagic() {
        #expect(ConnectionPreface.check(Array("GET / HTTP/1.1\r\n".utf8)) == .rejected(.wrongMagic))
        #expect(ConnectionPreface.check([0x16, 0x03, 0x01]) == .rejected(.wrongMagic))  // TLS hello
        #expect(ConnectionPreface.check(Array("HIS".utf8) + [0]) == .rejected(.wrongMagic))
        #expect(ConnectionPreface.check(Array("hiscore".utf8) + [1]) == .rejected(.wrongMagic))
    }

    @Test("another protocol version is refused with its number")
    func otherVersion() {
        #expect(ConnectionPreface.check(Array("HISCORE".utf8) + [2]) == .rejected(.unsupportedProtocolVersion(2)))
        #expect(ConnectionPreface.check(Array("HISCORE".utf8) + [0]) == .rejected(.unsupportedProtocolVersion(0)))
        #expect(ConnectionPreface.Rejection.unsupportedProtocolVersion(2).description.contains("unsupported protocol version 2"))
    }
}
