/// HMAC-SHA256 (RFC 2104, RFC 4231): the signature of player tokens (JWT "HS256").
public enum HMACSHA256 {
    /// The 32-byte authentication code of `message` under `key`.
    public static func code<Key: Collection<UInt8>, Message: Collection<UInt8>>(for message: Message, key: Key) -> [UInt8] {
        // A key longer than a block is hashed first; a shorter one is zero-padded to a block.
        var block = key.count > SHA256.blockBytes ? SHA256.hash(key) : Array(key)
        block += [UInt8](repeating: 0, count: SHA256.blockBytes - block.count)
        let inner = SHA256.hash(block.map { $0 ^ 0x36 } + Array(message))
        return SHA256.hash(block.map { $0 ^ 0x5c } + inner)
    }

    /// Whether `presented` is the code of `message` under `key`, compared in constant time (its
    /// length alone is not secret: a code of the wrong length is refused at once).
    public static func isValid<Key: Collection<UInt8>, Message: Collection<UInt8>>(
        _ presented: [UInt8], for message: Message, key: Key
    ) -> Bool {
        let expected = code(for: message, key: key)
        return constantTimeEqual(presented, expected)
    }
}

/// Whether two byte strings are equal, taking the same time whichever bytes differ.
public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
