import NIOCore

/// A connection's bytes split into the preface and frames, in order, whatever the reads' cuts.
///
/// The bytes of a partial frame wait in `partial` until the rest arrives (at most one frame: the
/// decoder refuses a declared length above max_frame_bytes as soon as the 5-byte header is in),
/// and nothing is kept when a read ends on a frame boundary, so an idle connection holds no read
/// buffer. Not re-entrant by nature: bytes fed while a message is being handled (a `read()` issued
/// meanwhile may deliver a TLS handler's buffered plaintext at once) are queued and split after
/// the current ones, in order. A class so that such a nested `feed` reaches the same state.
final class InboundFrames {
    private var decoder: ServerInboundDecoder
    private var partial: ByteBuffer?
    private var splitting = false
    private var fedWhileSplitting: ByteBuffer?

    init(maxFrameBytes: Int) {
        decoder = ServerInboundDecoder(maxFrameBytes: maxFrameBytes)
    }

    /// Bytes of a partial frame (or preface) held for the next read.
    var heldBytes: Int { partial?.readableBytes ?? 0 }

    /// Splits `bytes` (after what is held), calling `chunk` once per read as it starts and
    /// `message` for each preface or frame, until `stopped()` holds. While `held()` holds, the
    /// frames not yet split are kept, whole, for a later `feed` (an empty one splits them).
    /// Throws the decoder's `FramingError` or `ConnectionFault`; the connection is over then.
    func feed(
        _ bytes: ByteBuffer, stopped: () -> Bool, held: () -> Bool = { false }, chunk: () -> Void,
        message: (ServerInbound) throws -> Void
    ) throws {
        guard !splitting else {
            if fedWhileSplitting == nil {
                fedWhileSplitting = bytes
            } else {
                fedWhileSplitting?.writeImmutableBuffer(bytes)
            }
            return
        }
        splitting = true
        defer {
            splitting = false
            fedWhileSplitting = nil
        }
        var next: ByteBuffer? = bytes
        while let read = next, !stopped() {
            chunk()
            var buffer: ByteBuffer
            if var waiting = partial {
                partial = nil
                waiting.writeImmutableBuffer(read)
                buffer = waiting
            } else {
                buffer = read
            }
            while !stopped(), !held(), let decoded = try decoder.decode(buffer: &buffer) {
                try message(decoded)
            }
            if !stopped() && buffer.readableBytes > 0 {
                // Only the unread tail is kept; its bytes move to the front once they are a small
                // part of what the buffer holds.
                if buffer.readerIndex > 1024 && buffer.readerIndex > buffer.readableBytes { buffer.discardReadBytes() }
                partial = buffer
            }
            next = fedWhileSplitting
            fedWhileSplitting = nil
        }
    }
}
