import Glibc
import HiscoreAuth
import Logging

/// One JSON object per log line (`hiscored --log-format json`), for log pipelines that index
/// fields instead of parsing text:
///
///     {"time":"2026-11-30T23:44:59.123Z","level":"info","label":"hiscored","source":"HiscoreServer","message":"…"}
///
/// followed by the entry's metadata, each key a field (nested metadata as JSON objects and
/// arrays). Each line goes out in one `write` (lines from different threads do not interleave);
/// control characters and quotes in messages are escaped, so a player id or a board id in a
/// message can never start a line of its own.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        // One write(2) per line, retried over short writes, so concurrent lines do not interleave
        // (stderr is unbuffered: fputs could split a long line over several writes).
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }  // stderr closed or broken: nowhere to report it
            bytes = bytes.dropFirst(written)
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let own = event.metadata { fields.merge(own) { $1 } }
        var line = "{\"time\":"
        JSONValue.appendQuoted(Self.timestamp(microsSinceEpoch: SequenceClock.nowMicros()), to: &line)
        line += ",\"level\":"
        JSONValue.appendQuoted(event.level.rawValue, to: &line)
        line += ",\"label\":"
        JSONValue.appendQuoted(label, to: &line)
        line += ",\"source\":"
        JSONValue.appendQuoted(event.source, to: &line)
        line += ",\"message\":"
        JSONValue.appendQuoted(event.message.description, to: &line)
        for key in fields.keys.sorted() where !Self.reserved.contains(key) {
            guard let value = fields[key] else { continue }
            line += ","
            JSONValue.appendQuoted(key, to: &line)
            line += ":"
            Self.appendValue(value, to: &line)
        }
        line += "}\n"
        write(line)
    }

    /// Field names of every line; metadata under these names is left out rather than repeated.
    static let reserved: Set<String> = ["time", "level", "label", "source", "message"]

    static func appendValue(_ value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let text): JSONValue.appendQuoted(text, to: &line)
        case .stringConvertible(let convertible): JSONValue.appendQuoted(convertible.description, to: &line)
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                appendValue(element, to: &line)
            }
            line += "]"
        case .dictionary(let dictionary):
            line += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { line += "," }
                JSONValue.appendQuoted(key, to: &line)
                line += ":"
                if let element = dictionary[key] { appendValue(element, to: &line) }
            }
            line += "}"
        }
    }

    /// UTC, milliseconds: `2026-11-30T23:44:59.123Z`.
    static func timestamp(microsSinceEpoch micros: UInt64) -> String {
        var seconds = time_t(micros / 1_000_000)
        let millis = Int(micros % 1_000_000 / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let date = padded(Int(parts.tm_year) + 1900, 4) + "-" + padded(Int(parts.tm_mon) + 1, 2) + "-" + padded(Int(parts.tm_mday), 2)
        let time = padded(Int(parts.tm_hour), 2) + ":" + padded(Int(parts.tm_min), 2) + ":" + padded(Int(parts.tm_sec), 2)
        return date + "T" + time + "." + padded(millis, 3) + "Z"
    }
}
