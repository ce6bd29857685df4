import HiscoreWire
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Out-of-band measurements for `hiscore-bench server`: the server process's CPU and memory from
// /proc, the client's own CPU, Hiscore's optional /metrics endpoint, and a small blocking client
// for one-off control calls (Redis INFO / ZCARD, Hiscore board size).

enum ServerProc {
    static let clockTicksPerSecond: Int = Int(sysconf(Int32(_SC_CLK_TCK)))

    static func readFile(_ path: String, limit: Int = 1 << 22) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func exists(pid: Int32) -> Bool { access("/proc/\(pid)/stat", R_OK) == 0 }

    /// utime + stime of the process (all threads), in clock ticks, from /proc/PID/stat.
    static func cpuTicks(pid: Int32) -> Int? {
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": state(3) ... utime is field 14, stime 15 -> indices 11, 12 here.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    /// Sum of the run time of every thread (ns) from /proc/PID/task/*/schedstat.
    static func schedNanos(pid: Int32) -> Int? {
        guard let dir = opendir("/proc/\(pid)/task") else { return nil }
        defer { closedir(dir) }
        var total = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.first?.isNumber == true,
                let text = readFile("/proc/\(pid)/task/\(name)/schedstat"),
                let first = text.split(separator: " ").first, let nanos = Int(first)
            else { continue }
            total += nanos
        }
        return total
    }

    /// A "Vm..." line of /proc/PID/status, in kB.
    static func statusKB(pid: Int32, _ key: String) -> Int? {
        guard let status = readFile("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// Machine-wide busy clock ticks (user+nice+system+irq+softirq over all CPUs), /proc/stat.
    static func machineBusyTicks() -> Int? {
        guard let stat = readFile("/proc/stat", limit: 4096), let line = stat.split(separator: "\n").first,
            line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard fields.count >= 7 else { return nil }
        return fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
    }

    /// This process's user + system CPU, in microseconds.
    static func selfCPUMicros() -> Int {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000
            + Int(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    }
}

private func serverSocketSend(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    send(fd, bytes, count, 0)
}

/// A blocking TCP connection for control calls (not on the measured path).
final class ServerControlSocket {
    private let fd: Int32
    private var pending: [UInt8] = []

    init(host: String, port: Int) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw LoadProtocolError("control connection: \(host) is not an IPv4 address")
        }
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw LoadProtocolError("socket() failed") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            close(descriptor)
            throw LoadProtocolError("control connection to \(host):\(port) failed (errno \(errno))")
        }
        fd = descriptor
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { serverSocketSend(fd, $0.baseAddress! + offset, bytes.count - offset) }
            guard n > 0 else { throw LoadProtocolError("control connection: send failed") }
            offset += n
        }
    }

    /// Reads until `complete` returns how many leading bytes form a whole message, then returns them.
    func receive(until complete: ([UInt8]) throws -> Int?) throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let length = try complete(pending) {
                let message = Array(pending[0..<length])
                pending.removeFirst(length)
                return message
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw LoadProtocolError("control connection closed or timed out") }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    /// Reads everything until the peer closes.
    func receiveAll() -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            pending.append(contentsOf: chunk[0..<n])
        }
        return pending
    }
}

enum RedisControl {
    static func command(_ socket: ServerControlSocket, _ args: [String]) throws -> [UInt8] {
        var request = "*\(args.count)\r\n"
        for arg in args { request += "$\(arg.utf8.count)\r\n\(arg)\r\n" }
        try socket.send(Array(request.utf8))
        return try socket.receive { bytes in
            try bytes.withUnsafeBytes { raw in try RespParser.parse(raw, at: 0)?.1 }
        }
    }

    /// `INFO memory` field `used_memory`.
    static func usedMemory(host: String, port: Int) throws -> Int {
        try infoField(host: host, port: port, section: "memory", "used_memory")
    }

    /// `INFO persistence` field `rdb_changes_since_last_save`: keys changed, so a run's delta
    /// over its ZADD GT calls is the fraction that really raised a score (Hiscore reports the
    /// same fraction from its answers' `changed`).
    static func changes(host: String, port: Int) throws -> Int {
        try infoField(host: host, port: port, section: "persistence", "rdb_changes_since_last_save")
    }

    static func infoField(host: String, port: Int, section: String, _ field: String) throws -> Int {
        let socket = try ServerControlSocket(host: host, port: port)
        let reply = String(decoding: try command(socket, ["INFO", section]), as: UTF8.self)
        for line in reply.split(whereSeparator: { $0.isNewline }) where line.hasPrefix(field + ":") {
            if let value = Int(line.dropFirst(field.count + 1)) { return value }
        }
        throw LoadProtocolError("INFO \(section) has no \(field)")
    }

    static func zcard(host: String, port: Int) throws -> Int {
        let socket = try ServerControlSocket(host: host, port: port)
        let reply = String(decoding: try command(socket, ["ZCARD", loadBoardID]), as: UTF8.self)
        guard reply.hasPrefix(":"), let value = Int(reply.dropFirst().prefix(while: { !$0.isNewline })) else {
            throw LoadProtocolError("ZCARD reply \(reply.prefix(40))")
        }
        return value
    }
}

enum HiscoreControl {
    /// One call on a fresh connection.
    static func call(host: String, port: Int, _ method: RequestMethod) throws -> ResponseEnvelope {
        let socket = try ServerControlSocket(host: host, port: port)
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        buffer.writeBytes(ConnectionPreface.bytes)
        FrameEncoding.encodeRequestFrame(RequestEnvelope(callID: 1, method: method), into: &buffer)
        try socket.send(Array(buffer.readableBytesView))
        while true {
            let frame = try socket.receive { bytes in
                guard bytes.count >= 5 else { return nil }
                let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
                return bytes.count >= 5 + length ? 5 + length : nil
            }
            let envelope = try frame[5...].withUnsafeBytes { try WireCodec.decodeResponse($0) }
            if envelope.callID == 1 { return envelope }
            if envelope.callID == 0, envelope.status.map({ $0.code != .ok }) == true {
                throw LoadProtocolError("hiscore control call: connection error \(envelope.status!)")
            }
        }
    }

    /// The board's size (0 when it does not exist).
    static func boardSize(host: String, port: Int) throws -> Int {
        let reply = try call(host: host, port: port, .top(TopRequest(boardID: loadBoardID, limit: 1)))
        if let status = reply.status, status.code != .ok {
            if status.code == .notFound { return 0 }
            throw LoadProtocolError("top(limit 1): \(status)")
        }
        guard case .top(let top)? = reply.result else { throw LoadProtocolError("top(limit 1): no result") }
        return Int(top.boardSize)
    }
}

/// Prometheus text from an HTTP URL (`http://host:port/path`), parsed into name -> value (the
/// first sample of each metric name without labels, or the sum over its labelled samples).
enum ServerMetrics {
    static func fetch(_ url: String) throws -> [String: Double] {
        guard url.hasPrefix("http://") else { throw LoadProtocolError("--metrics-url must be http://host:port/path") }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/metrics" : String(rest[slash...])
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) else {
            throw LoadProtocolError("--metrics-url needs an explicit port")
        }
        let host = String(authority[..<colon])
        let socket = try ServerControlSocket(host: host, port: port)
        try socket.send(Array("GET \(path) HTTP/1.0\r\nHost: \(authority)\r\nConnection: close\r\n\r\n".utf8))
        let text = String(decoding: socket.receiveAll(), as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), text.split(separator: " ").dropFirst().first == "200" else {
            throw LoadProtocolError("GET \(url): \(text.prefix(60))")
        }
        var values: [String: Double] = [:]
        for line in text.split(whereSeparator: { $0.isNewline }) where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let value = Double(parts[1]) else { continue }
            let name = parts[0].prefix(while: { $0 != "{" })
            values[String(name), default: 0] += value
        }
        return values
    }
}
