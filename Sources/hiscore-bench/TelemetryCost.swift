import ArgumentParser
import HiscoreServer
import HiscoreWire
import Logging
import NIOCore
import NIOPosix

/// `hiscore-bench telemetry`: the CPU that the telemetry `-DHISCORE_NO_TELEMETRY` compiles out
/// costs per call, from the server's own code (`LoopMetrics`, `Telemetry.endOfBatch`) doing per
/// call what a connection does for one: count the request's bytes, read the clock and record the
/// call's method, status and latency bucket, count the response's bytes; plus one end-of-batch
/// check per `batch` calls. Divided by a call's server CPU (`hiscore-bench server`), it bounds the
/// overhead that paired A/B runs of the two builds cannot resolve on a noisy machine. The
/// counters stay in cache here, as they do in a server (a few hundred bytes per loop).
struct TelemetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telemetry", abstract: "Per-call CPU of the hot-path telemetry, from the server's own code.")

    @Option(help: "Calls to record.") var calls: Int = 10_000_000
    @Option(help: "Calls per read batch (one end-of-batch check each).") var batch: Int = 16

    func run() async throws {
        guard calls > 0, batch > 0 else { throw ValidationError("--calls and --batch must be positive") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // A capacity nobody reaches: the heavy-load summary line stays off, as it is below 80%.
        let telemetry = try await Telemetry.make(loops: [loop], capacityCallsPerSecond: .max / 2, logger: Logger(label: "bench"))
        let (calls, batch) = (self.calls, self.batch)
        let nanoseconds = try await loop.submit { () -> UInt64 in
            guard let metrics = telemetry.local(loop) else { return 0 }
            let callStart = NIODeadline.now()
            let start = clocks()
            for index in 0..<calls {
                metrics.bytesIn += 45
                let micros = Int((NIODeadline.now() - callStart).nanoseconds / 1000)
                metrics.record(.getRank, status: .ok, micros: micros)
                metrics.bytesOut += 60
                if index % batch == batch - 1 { telemetry.endOfBatch(metrics, now: .now()) }
            }
            return clocks().cpu - start.cpu
        }.get()
        try await group.shutdownGracefully()
        let perCall = (Double(nanoseconds) / Double(calls) * 10).rounded() / 10
        print("{\"bench\":\"telemetry\",\"calls\":\(calls),\"batch\":\(batch),\"ns_per_call\":\(perCall)}")
        printStandardError("telemetry: \(perCall) ns of CPU per call (\(calls) calls, an end-of-batch check every \(batch))")
    }
}
