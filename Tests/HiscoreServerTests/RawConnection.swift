import HiscoreWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback socket for protocol-fault tests: it sends exactly the bytes a test gives
/// and reads frames back with a bounded timeout, so hostile input can be crafted byte by byte.
final class RawConnection {
    private let fd: Int32
    private var received: [UInt8] = []

    private(set) var bytesReceived = 0

    init(port: Int, timeoutSeconds: Int = 5, receiveBufferBytes: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawConnectionError.system("socket") }
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw RawConnectionError.system("connect")
        }
    }

    deinit { close(fd) }

    /// Ends the connection both ways now (the descriptor itself is closed on deinit).
    func disconnect() { _ = shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    func sendPreface() { send(ConnectionPreface.bytes) }

    /// Bytes the kernel holds for this socket that have not been read yet (FIONREAD).
    func unreadBytes() -> Int {
        var count: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &count)
        return Int(count)
    }

    func send(_ request: RequestEnvelope) {
        var buffer = ByteBuffer()
        FrameEncoding.encodeRequestFrame(request, into: &buffer)
        send(Array(buffer.readableBytesView))
    }

    /// Reads until one whole frame arrived; nil on EOF or timeout.
    func readFrame() -> ResponseEnvelope? {
        while true {
            if received.count >= 5 {
                let length = Int(received[1]) << 24 | Int(received[2]) << 16 | Int(received[3]) << 8 | Int(received[4])
                if received.count >= 5 + length {
                    let body = Array(received[5..<(5 + length)])
                    received.removeFirst(5 + length)
                    return body.withUnsafeBytes { try? WireCodec.decodeResponse($0) }
                }
            }
            guard fill() else { return nil }
        }
    }

    /// True when the server closed the connection (EOF) within the timeout; frames before the
    /// EOF are discarded.
    func waitForClose() -> Bool {
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// Whether the server has closed the connection, without waiting: a non-blocking peek that
    /// sees EOF (or a reset). Bytes waiting to be read are left in place.
    func isClosedNow() -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return true }
        return count < 0 && errno == ECONNRESET
    }

    /// Everything until EOF (or the timeout), as text.
    func readAll() -> String {
        while fill() {}
        let text = String(decoding: received, as: UTF8.self)
        received.removeAll()
        return text
    }

    /// Reads the hello after the preface.
    func handshake() -> ServerHello? {
        sendPreface()
        guard case .hello(let hello) = readFrame()?.result else { return nil }
        return hello
    }

    /// The next line without its line end, or nil if the connection ends (or times out) first.
    func readLine() -> String? {
        while true {
            if let end = received.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(received[..<end])
                received.removeFirst(end + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard fill() else { return nil }
        }
    }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        bytesReceived += count
        received.append(contentsOf: chunk[0..<count])
        return true
    }
}

enum RawConnectionError: Error {
    case system(String)
}
