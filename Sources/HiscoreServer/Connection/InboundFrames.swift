import HiscoreWire
import NIOCore

/// A connection's bytes split into the preface and frames, in order, whatever the reads' cuts.
///
/// The bytes of a partial frame wait in `partial` until the rest arrives (at most one frame: the
/// decoder refuses a declared length above max_frame_bytes as soon as the 5-byte header is in),
/// and nothing is kept when a read ends on a frame boundary, so an idle connection holds no read
/// buffer. Not re-entrant by nature: bytes fed while a message is being handled (a `read()` issued
/// meanwhile may deliver a TLS handler's buffered plaintext at once) are queued and split after
/// the current ones, in order. A class so that such a nested `feed` reaches the same state.
///
/// A frame longer than `gatedFrameBytes` is shown to the caller's `admitsLargeFrame` once that
/// many of its body bytes are in, before the rest is buffered: a connection that may not send it
/// (no credentials) is refused then, and the rest of the frame is read and dropped as it comes,
/// so such a connection never holds more than about `gatedFrameBytes` (it held the whole frame,
/// up to twice `max_frame_bytes` with the buffer's growth, for as long as it kept the frame
/// unfinished).
final class InboundFrames {
    static let gatedFrameBytes = 16 << 10

    private var decoder: ServerInboundDecoder
    private var partial: ByteBuffer?
    private var splitting = false
    private var fedWhileSplitting: ByteBuffer?
    /// The partial frame was admitted by `admitsLargeFrame` (reset as each frame completes).
    private var partialAdmitted = false
    /// Bytes of a refused frame still to drop.
    private var skipping = 0

    private let maxFrameBytes: Int

    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
        decoder = ServerInboundDecoder(maxFrameBytes: maxFrameBytes)
    }

    /// Bytes of a partial frame (or preface) held for the next read.
    var heldBytes: Int { partial?.readableBytes ?? 0 }

    /// Splits `bytes` (after what is held), calling `chunk` once per read as it starts and
    /// `message` for each preface or frame, until `stopped()` holds. While `held()` holds, the
    /// frames not yet split are kept, whole, for a later `feed` (an empty one splits them).
    /// Throws the decoder's `FramingError` or `ConnectionFault`; the connection is over then.
    func feed(
        _ bytes: ByteBuffer, stopped: () -> Bool, held: () -> Bool = { false },
        admitsLargeFrame: (_ bodyPrefix: UnsafeRawBufferPointer, _ declaredLength: Int) -> Bool = { _, _ in true },
        chunk: () -> Void, message: (ServerInbound) throws -> Void
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
        while var read = next, !stopped() {
            chunk()
            // A refused frame's rest comes first in the new bytes (what is held ends before it).
            if skipping > 0 {
                let dropped = min(skipping, read.readableBytes)
                read.moveReaderIndex(forwardBy: dropped)
                skipping -= dropped
            }
            var buffer: ByteBuffer
            if var waiting = partial {
                partial = nil
                waiting.writeImmutableBuffer(read)
                buffer = waiting
            } else {
                buffer = read
            }
            while !stopped(), !held(), let decoded = try decoder.decode(buffer: &buffer) {
                partialAdmitted = false
                try message(decoded)
            }
            // What is left ends with at most one unfinished frame (after whole frames, when they
            // are held): a large one is checked before more of it is buffered.
            if !stopped(), !partialAdmitted, decoder.readsFrames, let start = Self.unfinishedFrameStart(buffer),
                let declared = Self.declaredLength(buffer, at: start), declared > Self.gatedFrameBytes,
                // A header the decoder will refuse (a flag, an oversized length) is left to it.
                declared <= maxFrameBytes, buffer.getInteger(at: buffer.readerIndex + start, as: UInt8.self) == 0,
                buffer.readableBytes - start >= FrameParser.headerLength + Self.gatedFrameBytes
            {
                let admitted = buffer.withUnsafeReadableBytes {
                    admitsLargeFrame(UnsafeRawBufferPointer(rebasing: $0[(start + FrameParser.headerLength)...]), declared)
                }
                if admitted {
                    partialAdmitted = true
                } else {
                    skipping = FrameParser.headerLength + declared - (buffer.readableBytes - start)
                    buffer.moveWriterIndex(to: buffer.readerIndex + start)
                }
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

    /// The body length declared by the frame header `offset` bytes into the readable bytes; nil
    /// before its 5 bytes are in.
    private static func declaredLength(_ buffer: ByteBuffer, at offset: Int) -> Int? {
        guard buffer.readableBytes - offset >= FrameParser.headerLength,
            let length = buffer.getInteger(at: buffer.readerIndex + offset + 1, endianness: .big, as: UInt32.self)
        else { return nil }
        return Int(length)
    }

    /// Where the unfinished frame at the end of `buffer` starts, past its whole frames (held
    /// ones); nil when the buffer ends on a frame boundary.
    private static func unfinishedFrameStart(_ buffer: ByteBuffer) -> Int? {
        var offset = 0
        while let length = declaredLength(buffer, at: offset), offset + FrameParser.headerLength + length <= buffer.readableBytes {
            offset += FrameParser.headerLength + length
        }
        return offset < buffer.readableBytes ? offset : nil
    }
}
