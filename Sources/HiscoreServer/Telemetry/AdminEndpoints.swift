import NIOConcurrencyHelpers

/// What the admin port answers with, which changes once the server has started: the port opens
/// before recovery (which can take seconds with a large data dir), so that `/healthz` answers
/// while the data loads — a liveness probe that found the port closed would restart the server
/// in a loop — and `/readyz` and `/metrics` say "starting" until the calls port listens.
final class AdminEndpoints: Sendable {
    /// Renders `/metrics` and tells why the server is not ready (nil = ready).
    struct Serving: Sendable {
        let metrics: @Sendable () async -> String
        let notReadyReason: @Sendable () -> String?
    }

    static let startingReason = "starting (recovering the data directory)"

    private let serving = NIOLockedValueBox<Serving?>(nil)

    /// From now on the endpoints answer for the running server.
    func serve(_ endpoints: Serving) {
        serving.withLockedValue { $0 = endpoints }
    }

    /// What renders `/metrics`; nil while starting. Told without a hop, so that the "starting"
    /// answer needs no task: a 503 must not wait for threads busy with the recovery.
    func metricsRenderer() -> (@Sendable () async -> String)? {
        serving.withLockedValue { $0 }?.metrics
    }

    func notReadyReason() -> String? {
        guard let current = serving.withLockedValue({ $0 }) else { return Self.startingReason }
        return current.notReadyReason()
    }
}
