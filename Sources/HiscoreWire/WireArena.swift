#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CProtobufC

/// Scratch memory for one protobuf-c encode or decode.
///
/// protobuf-c works on C structs: to encode, every nested message, string and repeated array must
/// live in C memory while `pack` runs; to decode, `unpack` allocates the same kind of tree. A bump
/// allocator reset after each call turns those many small mallocs into pointer increments, and the
/// decode side doubles as a budget: an untrusted frame cannot make `unpack` allocate more than
/// `decodeBudget` bytes (each 2-byte empty sub-message becomes an ~80-byte struct otherwise).
///
/// Not thread-safe: use one per thread or per connection (`WireArena.forCurrentThread`), and do not
/// nest codec calls on the same arena.
public final class WireArena {
    private struct Chunk {
        let base: UnsafeMutableRawPointer
        let capacity: Int
    }

    /// The arena's mutable state. It sits behind a pointer rather than in stored properties
    /// because every allocation touches it, and class stored properties pay a dynamic
    /// exclusivity check per access (measured at ~15% of a small encode+decode round trip).
    private struct State {
        /// All chunks in use since the last reset; the last one is being filled.
        var chunks: [Chunk]
        /// The last of `chunks`, kept apart so that an allocation reads no array (its bounds
        /// check and retain were ~2% of a 50-entry page's server CPU).
        var current: Chunk
        var usedInCurrentChunk = 0
        /// Bytes handed out since the last reset (including alignment padding).
        var bytesInUse = 0
        /// Decoder allocations fail (and `unpack` returns NULL) beyond this many bytes in use.
        var decodeBudget = Int.max
        /// Set when a decoder allocation was refused because of `decodeBudget`.
        var decodeBudgetExceeded = false
    }

    /// Size of the first chunk of a new arena.
    public static let defaultInitialCapacity = 16 * 1024
    /// After a large message, the arena keeps one chunk big enough for it, up to this size, and
    /// returns the rest to malloc at `reset()`.
    public static let maxRetainedCapacity = 1 << 20

    private let initialCapacity: Int
    private let state: UnsafeMutablePointer<State>

    public init(initialCapacity: Int = WireArena.defaultInitialCapacity) {
        let capacity = max(initialCapacity, 256)
        self.initialCapacity = capacity
        state = .allocate(capacity: 1)
        let first = Chunk(base: .allocate(byteCount: capacity, alignment: 16), capacity: capacity)
        state.initialize(
            to: State(chunks: [first], current: first))
    }

    deinit {
        for chunk in state.pointee.chunks { chunk.base.deallocate() }
        state.deinitialize(count: 1)
        state.deallocate()
    }

    var bytesInUse: Int { state.pointee.bytesInUse }

    var decodeBudget: Int {
        get { state.pointee.decodeBudget }
        set { state.pointee.decodeBudget = newValue }
    }

    var decodeBudgetExceeded: Bool { state.pointee.decodeBudgetExceeded }

    /// Forgets every allocation. If the last use spilled into several chunks, they are replaced by
    /// one chunk big enough for it (bounded by `maxRetainedCapacity`), so a steady stream of
    /// similar messages settles on a single chunk and no malloc at all.
    public func reset() {
        if state.pointee.chunks.count > 1 {
            var retained = initialCapacity
            while retained < state.pointee.bytesInUse && retained < Self.maxRetainedCapacity { retained *= 2 }
            for chunk in state.pointee.chunks { chunk.base.deallocate() }
            let kept = Chunk(base: .allocate(byteCount: retained, alignment: 16), capacity: retained)
            state.pointee.chunks = [kept]
            state.pointee.current = kept
        }
        state.pointee.usedInCurrentChunk = 0
        state.pointee.bytesInUse = 0
        state.pointee.decodeBudget = .max
        state.pointee.decodeBudgetExceeded = false
    }

    /// `byteCount` bytes aligned to `alignment` (a power of two, at most 16). Never fails.
    func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let size = max(byteCount, 1)
        var current = state.pointee.current
        var start = (state.pointee.usedInCurrentChunk + alignment - 1) & ~(alignment - 1)
        if start + size > current.capacity {
            // Double the chunk size each time so a big message costs O(log n) mallocs.
            let capacity = max(size, min(current.capacity * 2, 4 * Self.maxRetainedCapacity))
            current = Chunk(base: .allocate(byteCount: capacity, alignment: 16), capacity: capacity)
            state.pointee.chunks.append(current)
            state.pointee.current = current
            state.pointee.usedInCurrentChunk = 0
            start = 0
        }
        state.pointee.bytesInUse += start - state.pointee.usedInCurrentChunk + size
        state.pointee.usedInCurrentChunk = start + size
        return current.base + start
    }

    /// Uninitialized memory for `count` values of `T`.
    func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        allocate(byteCount: MemoryLayout<T>.stride * count, alignment: min(MemoryLayout<T>.alignment, 16))
            .bindMemory(to: T.self, capacity: count)
    }

    /// Bytes in front of each allocation made for `unpack`, holding the size asked for (16 keeps
    /// the allocation 16-byte aligned).
    static let decoderHeaderBytes = 16

    /// An allocation for protobuf-c's `unpack`, or nil once `decodeBudget` would be exceeded.
    ///
    /// Its size is kept in front of it because a decoded `string` field is only a C string: a
    /// string sent with a NUL byte inside would read as its part before the NUL. protobuf-c
    /// allocates exactly the wire length + 1 for a string, so `decodedByteCount(of:)` tells the
    /// wire length apart from the C length (`ProtoCRead.string` refuses the difference).
    fileprivate func allocateForDecoder(byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount <= state.pointee.decodeBudget - state.pointee.bytesInUse - Self.decoderHeaderBytes else {
            state.pointee.decodeBudgetExceeded = true
            return nil
        }
        let block = allocate(byteCount: Self.decoderHeaderBytes + byteCount, alignment: 16)
        block.storeBytes(of: byteCount, as: Int.self)
        return block + Self.decoderHeaderBytes
    }

    /// The size protobuf-c's `unpack` asked for when it allocated `pointer`.
    ///
    /// - Precondition: `pointer` was returned by this module's decoder allocator (`unpack` with
    ///   `protobufAllocator`) and the arena has not been reset since.
    static func decodedByteCount(of pointer: UnsafeRawPointer) -> Int {
        (pointer - decoderHeaderBytes).load(as: Int.self)
    }

    /// A protobuf-c allocator drawing from this arena; `free` is a no-op (`reset()` frees).
    /// It holds the arena unretained: keep the arena alive while the allocator is in use.
    var protobufAllocator: ProtobufCAllocator {
        ProtobufCAllocator(
            alloc: { arenaPointer, byteCount in
                guard let arenaPointer else { return nil }
                // Without a retain and release of the arena per allocation (protobuf-c allocates
                // for every decoded message, string and repeated field).
                return Unmanaged<WireArena>.fromOpaque(arenaPointer)._withUnsafeGuaranteedRef {
                    $0.allocateForDecoder(byteCount: byteCount)
                }
            },
            free: { _, _ in },
            allocator_data: Unmanaged.passUnretained(self).toOpaque())
    }
}

// MARK: - Copying Swift values into the arena

extension WireArena {
    /// A NUL-terminated copy of `string` (protobuf-c `string` fields are C strings).
    func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let copy = allocate(CChar.self, count: utf8.count + 1)
            if let source = utf8.baseAddress {
                UnsafeMutableRawPointer(copy).copyMemory(from: source, byteCount: utf8.count)
            }
            copy[utf8.count] = 0
            return copy
        }
    }

    /// A copy of `bytes` as protobuf-c `bytes` (no copy for empty values).
    func binaryData(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let copy = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { copy.update(from: base, count: source.count) }
        }
        return ProtobufCBinaryData(len: bytes.count, data: copy)
    }

    /// A protobuf-c repeated `string` field.
    func cStringArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        guard !strings.isEmpty else { return nil }
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: strings.count)
        for (index, string) in strings.enumerated() {
            (array + index).initialize(to: cString(string))
        }
        return array
    }

    /// A protobuf-c message struct, initialized by its generated `*__init` function.
    func message<Message>(_ initialize: (UnsafeMutablePointer<Message>?) -> Void) -> UnsafeMutablePointer<Message> {
        let message = allocate(Message.self)
        initialize(message)
        return message
    }

    /// A protobuf-c repeated field: an array of `values.count` pointers, each from `convert`.
    func pointerArray<Value, Message>(
        _ values: [Value], _ convert: (Value) -> UnsafeMutablePointer<Message>
    ) -> UnsafeMutablePointer<UnsafeMutablePointer<Message>?>? {
        guard !values.isEmpty else { return nil }
        let array = allocate(UnsafeMutablePointer<Message>?.self, count: values.count)
        for (index, value) in values.enumerated() {
            (array + index).initialize(to: convert(value))
        }
        return array
    }
}

// MARK: - One arena per thread

/// The key of each thread's arena; the destructor releases it when the thread exits.
private let threadArenaKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { arenaPointer in
        #if canImport(Darwin)
        Unmanaged<WireArena>.fromOpaque(arenaPointer).release()
        #else
        if let arenaPointer { Unmanaged<WireArena>.fromOpaque(arenaPointer).release() }
        #endif
    }
    precondition(status == 0, "pthread_key_create failed: \(status)")
    return key
}()

extension WireArena {
    /// The calling thread's arena, created on first use. The codec entry points without an
    /// `arena:` argument use it, so event-loop threads each reuse one.
    public static var forCurrentThread: WireArena {
        if let existing = pthread_getspecific(threadArenaKey) {
            return Unmanaged<WireArena>.fromOpaque(existing).takeUnretainedValue()
        }
        let arena = WireArena()
        pthread_setspecific(threadArenaKey, Unmanaged.passRetained(arena).toOpaque())
        return arena
    }
}
