import HiscoreWire

/// The configured API keys. Only SHA-256 digests are kept in memory; a presented key is hashed and
/// compared with every digest in constant time, so neither the comparison time nor an early exit
/// tells an attacker how much of a key matched (hashing first also hides the keys' lengths).
/// Keys are never logged: only their names.
public struct APIKeys: Sendable {
    public struct Entry: Sendable {
        let digest: [UInt8]
        public let role: Role
        public let name: String

        /// Which key this is, without the key (its digest).
        public var id: KeyID { KeyID(digest: digest) }
    }

    /// A key's identity without the key itself: what a connection remembers of the keys it
    /// used, to tell whether a reload of the keys kept them.
    public struct KeyID: Hashable, Sendable {
        let digest: [UInt8]
    }

    /// The entry of the key `id` names, if configured.
    public func entry(_ id: KeyID) -> Entry? {
        entries.first { $0.digest == id.digest }
    }

    /// Keys shorter than this are refused at start-up: they could be guessed.
    public static let minimumKeyLength = 16

    public private(set) var entries: [Entry] = []

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }

    /// Adds a key parsed elsewhere (the environment's after the keys file's). The same key twice
    /// would take the last one's role without a word: it is refused, naming both.
    public mutating func append(_ entry: Entry) throws(KeyConfigurationError) {
        if let earlier = entries.first(where: { $0.digest == entry.digest }) {
            throw .invalid("\(entry.name): the same key is already configured as \(earlier.name) (\(earlier.role)); each key must appear once")
        }
        entries.append(entry)
    }

    public mutating func add(key: String, role: Role, name: String) throws(KeyConfigurationError) {
        guard role != .player else { throw .invalid("\(name): role must be admin, writer or reader") }
        guard key.utf8.count >= Self.minimumKeyLength else {
            throw .invalid("\(name): keys must be at least \(Self.minimumKeyLength) bytes (UTF-8)")
        }
        try append(Entry(digest: SHA256.hash(Array(key.utf8)), role: role, name: name))
    }

    /// The entry whose key equals `presented`, comparing against every key in constant time.
    public func match(_ presented: String) -> Entry? {
        let digest = SHA256.hash(Array(presented.utf8))
        var found: Entry?
        for entry in entries {
            var difference: UInt8 = 0
            for index in 0..<digest.count { difference |= digest[index] ^ entry.digest[index] }
            if difference == 0 { found = entry }
        }
        return found
    }

    /// Parses a keys file: one key per line, `ROLE KEY [NAME]`; a field starting with `#` starts
    /// a comment (a `#` inside a key is part of the key: cutting there would silently make the
    /// key shorter than the one the operator wrote).
    public static func parse(file text: String, source: String) throws(KeyConfigurationError) -> APIKeys {
        var keys = APIKeys()
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let allFields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            let fields = allFields.prefix { !$0.hasPrefix("#") }
            if fields.isEmpty { continue }
            guard fields.count >= 2, let role = Role(name: String(fields[0])) else {
                throw .invalid("\(source):\(number + 1): expected 'ROLE KEY [NAME]' with ROLE admin, writer or reader")
            }
            let name = fields.count >= 3 ? String(fields[2]) : "\(source):\(number + 1)"
            try keys.add(key: String(fields[1]), role: role, name: name)
        }
        return keys
    }

    /// Parses `HISCORE_API_KEYS`: `ROLE:KEY,ROLE:KEY`.
    public static func parse(environment value: String) throws(KeyConfigurationError) -> APIKeys {
        var keys = APIKeys()
        for (index, item) in value.split(separator: ",").enumerated() {
            let parts = item.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let role = Role(name: Self.trimmingBlanks(parts[0])) else {
                throw .invalid("HISCORE_API_KEYS item \(index + 1): expected ROLE:KEY with ROLE admin, writer or reader")
            }
            try keys.add(
                key: Self.trimmingBlanks(parts[1]), role: role, name: "HISCORE_API_KEYS[\(index + 1)]")
        }
        return keys
    }

    /// `text` without the spaces and tabs around it.
    static func trimmingBlanks(_ text: Substring) -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }), let last = text.lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return String(text[first...last])
    }
}

public enum KeyConfigurationError: Error, Sendable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let message): message
        }
    }
}

extension Role {
    public init?(name: String) {
        switch name.lowercased() {
        case "admin": self = .admin
        case "writer": self = .writer
        case "reader": self = .reader
        default: return nil
        }
    }

}
