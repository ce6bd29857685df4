import HiscoreWire
import NIOCore

/// The client end of a connection: sends the preface, waits for the server's hello, then matches
/// response frames to pending calls by call id (responses arrive in completion order). Stream
/// calls get every event frame until their final status frame.
final class ClientChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Pending {
        case unary(EventLoopPromise<ResponseEnvelope>)
        case stream(onFrame: (ResponseEnvelope) -> Void)
        /// A unary call the caller gave up on (deadline, task cancelled), its cancel sent. The
        /// server counts it against `max_inflight_calls` until it answers, so its slot is held
        /// until then: sending a queued call sooner could be refused as one call too many.
        case abandoned
    }

    private let helloPromise: EventLoopPromise<ServerHello>
    private var pending: [UInt64: Pending] = [:]
    /// Unary calls sent and not answered; never more than the server's `max_inflight_calls`:
    /// calls beyond it wait here, in order, instead of being refused by the server.
    private var unaryInflight = 0
    private var maxInflight = Int.max
    /// The server's `max_frame_bytes`: a longer request would make it close the connection
    /// (failing every other call on it), so such a request fails alone, unsent.
    private var maxRequestBytes = Int.max
    /// Calls waiting for an in-flight slot, with when they started waiting.
    private var queued: [(RequestEnvelope, Pending, queuedAt: NIODeadline)] = []
    private var failure: HiscoreError?
    private var context: ChannelHandlerContext?

    init(helloPromise: EventLoopPromise<ServerHello>) {
        self.helloPromise = helloPromise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { sendPreface(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendPreface(context)
        context.fireChannelActive()
    }

    private var prefaceSent = false
    private func sendPreface(_ context: ChannelHandlerContext) {
        guard !prefaceSent else { return }
        prefaceSent = true
        var buffer = context.channel.allocator.buffer(capacity: ConnectionPreface.bytes.count)
        buffer.writeBytes(ConnectionPreface.bytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let response: ResponseEnvelope
        do {
            response = try frame.withUnsafeReadableBytes { try WireCodec.decodeResponse($0) }
        } catch {
            failAll(HiscoreError(.internal, "undecodable response from server: \(error)"))
            context.close(promise: nil)
            return
        }
        if response.callID == 0 {
            if case .hello(let hello) = response.result {
                maxInflight = max(1, Int(hello.maxInflightCalls))
                if hello.maxFrameBytes > 0 { maxRequestBytes = Int(hello.maxFrameBytes) }
                helloPromise.succeed(hello)
            } else {
                // The server closes the connection after it: every call fails UNAVAILABLE (the
                // connection is gone, whichever call caused it), with the server's error as the
                // cause (docs/clients.md §4). A subscription must not read its code as its own:
                // RESOURCE_EXHAUSTED on a stream means "you fell behind".
                let status = response.status ?? Status(.unknown, "connection-level frame without status")
                failAll(HiscoreError(.unavailable, "the server closed the connection: \(status)", cause: status))
                context.close(promise: nil)
            }
            return
        }
        switch pending[response.callID] {
        case .unary(let promise):
            pending[response.callID] = nil
            unaryInflight -= 1
            promise.succeed(response)
            sendQueued()
        case .stream(let onFrame):
            if isFinal(response) { pending[response.callID] = nil }
            onFrame(response)
        case .abandoned:
            pending[response.callID] = nil
            unaryInflight -= 1
            sendQueued()
        case nil:
            break  // a late answer to a call the client gave up on
        }
    }

    private func isFinal(_ response: ResponseEnvelope) -> Bool {
        if case .event = response.result { return false }
        return true
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(failure ?? HiscoreError(.unavailable, "connection closed"))
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(HiscoreError(.unavailable, "connection error: \(error)"))
        context.close(promise: nil)
    }

    /// Registers a call and writes its frame; the frame is built on the event loop.
    func start(_ request: RequestEnvelope, as pendingCall: Pending) {
        guard context != nil, failure == nil else {
            fail(pendingCall, failure ?? HiscoreError(.unavailable, "connection closed"))
            return
        }
        if case .unary = pendingCall {
            guard unaryInflight < maxInflight else {
                queued.append((request, pendingCall, queuedAt: .now()))
                return
            }
            unaryInflight += 1
        }
        write(request, as: pendingCall)
        sendQueued()  // an oversized request frees its slot at once
    }

    private func sendQueued() {
        while unaryInflight < maxInflight, !queued.isEmpty {
            var (request, call, queuedAt) = queued.removeFirst()
            if request.deadlineMillis > 0 {
                // The server counts the deadline from when it reads the request: send what is left
                // of it after the wait here, or give up unsent once none is.
                let waited = UInt64(max(0, (NIODeadline.now() - queuedAt).nanoseconds / 1_000_000))
                guard waited < request.deadlineMillis else {
                    fail(call, HiscoreError(.deadlineExceeded, "deadline exceeded while waiting for an in-flight slot"))
                    continue
                }
                request.deadlineMillis -= waited
            }
            unaryInflight += 1
            write(request, as: call)
        }
    }

    private func write(_ request: RequestEnvelope, as pendingCall: Pending) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 128)
        FrameEncoding.encodeRequestFrame(request, into: &buffer)
        let bodyBytes = buffer.readableBytes - FrameParser.headerLength
        guard bodyBytes <= maxRequestBytes else {
            if case .unary = pendingCall { unaryInflight -= 1 }
            fail(pendingCall, HiscoreError(
                .resourceExhausted, "request of \(bodyBytes) bytes exceeds the server's max_frame_bytes (\(maxRequestBytes)); not sent"))
            return
        }
        pending[request.callID] = pendingCall
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Sends a frame without tracking a response (cancel).
    func send(_ request: RequestEnvelope) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 32)
        FrameEncoding.encodeRequestFrame(request, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Gives up on a unary call (deadline passed or task cancelled): fails it locally and, if it
    /// was sent, cancels it on the server (as call `cancelCallID`). Its in-flight slot is freed
    /// when the server answers it (see `Pending.abandoned`).
    func abandon(_ callID: UInt64, with error: HiscoreError, cancelCallID: UInt64) {
        if let index = queued.firstIndex(where: { $0.0.callID == callID }) {
            fail(queued.remove(at: index).1, error)  // never sent: nothing to cancel
            return
        }
        guard let call = pending[callID] else { return }
        switch call {
        case .unary:
            pending[callID] = .abandoned
            send(RequestEnvelope(callID: cancelCallID, method: .cancel(callID: callID)))
            fail(call, error)
        case .stream:
            pending[callID] = nil
            send(RequestEnvelope(callID: cancelCallID, method: .cancel(callID: callID)))
            fail(call, error)
        case .abandoned:
            return
        }
    }

    /// Forgets a stream the consumer stopped reading (its cancel follows).
    func abandonStream(_ callID: UInt64) {
        pending[callID] = nil
    }

    private func failAll(_ error: HiscoreError) {
        if failure == nil { failure = error }
        helloPromise.fail(error)
        let calls = Array(pending.values) + queued.map(\.1)
        pending.removeAll()
        queued.removeAll()
        unaryInflight = 0
        for call in calls { fail(call, error) }
    }

    private func fail(_ call: Pending, _ error: HiscoreError) {
        switch call {
        case .unary(let promise): promise.fail(error)
        case .stream(let onFrame): onFrame(.failure(callID: 0, error.status))
        case .abandoned: break
        }
    }
}
