import Atomics
import HiscoreStorage
import HiscoreWire
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The server's telemetry: per-loop metrics merged only when scraped, process and allocator
/// gauges read at scrape time, and the heavy-load summary line. No periodic work: an idle server
/// does nothing here.
package final class Telemetry: Sendable {
    private let loops: [any EventLoop]
    private let perLoop: [NIOLoopBound<LoopMetrics>]
    /// Calls per second the operator says the server is sized for; above 80% of it a one-line
    /// summary is logged each second.
    let capacityCallsPerSecond: Int
    private let logger: Logger
    private let summarySecond = ManagedAtomic<Int64>(0)
    private let summaryCalls = ManagedAtomic<Int>(0)

    package static func make(loops: [any EventLoop], capacityCallsPerSecond: Int, logger: Logger) async throws -> Telemetry {
        var perLoop: [NIOLoopBound<LoopMetrics>] = []
        for loop in loops { perLoop.append(try await loop.submit { NIOLoopBound(LoopMetrics(), eventLoop: loop) }.get()) }
        return Telemetry(loops: loops, perLoop: perLoop, capacity: capacityCallsPerSecond, logger: logger)
    }

    private init(loops: [any EventLoop], perLoop: [NIOLoopBound<LoopMetrics>], capacity: Int, logger: Logger) {
        self.loops = loops
        self.perLoop = perLoop
        self.capacityCallsPerSecond = capacity
        self.logger = logger
    }

    /// The metrics of the loop the caller runs on (connections run on the shard loops).
    package func local(_ loop: any EventLoop) -> LoopMetrics? {
        guard let index = loops.firstIndex(where: { $0 === loop }) else { return nil }
        return perLoop[index].value
    }

    /// Called once per read batch: closes the loop's one-second window when it has elapsed and,
    /// if the whole server ran above 80% of capacity in the last second, logs one summary line.
    package func endOfBatch(_ metrics: LoopMetrics, now: NIODeadline) {
        let elapsed = now - metrics.windowStart
        guard elapsed >= .seconds(1) else { return }
        // A window closes at the first read batch a second or more after it opened, which after
        // a quiet spell is much later: its calls are a rate over its own length.
        let calls = Int((Double(metrics.windowCalls) * 1e9 / Double(elapsed.nanoseconds)).rounded())
        metrics.windowCalls = 0
        metrics.windowStart = now
        let second = now.uptimeNanoseconds / 1_000_000_000
        summaryCalls.wrappingIncrement(by: calls, ordering: .relaxed)
        let previous = summarySecond.load(ordering: .relaxed)
        guard second > previous,
            summarySecond.compareExchange(expected: previous, desired: Int64(second), ordering: .relaxed).exchanged
        else { return }
        let total = summaryCalls.exchange(0, ordering: .relaxed)
        if Double(total) > 0.8 * Double(capacityCallsPerSecond) {
            logger.notice("heavy load: \(total) calls/s (capacity \(capacityCallsPerSecond)), allocated \(JemallocStats.allocatedBytes() ?? 0) bytes, cpu \(ProcessStats.cpuSeconds()) s")
        }
    }

    /// Sums every loop's counters (one hop per loop).
    func merged() async -> MetricsSnapshot? {
        var total: MetricsSnapshot?
        for (index, loop) in loops.enumerated() {
            let bound = perLoop[index]
            guard let snapshot = try? await loop.submit({ bound.value.snapshot() }).get() else { continue }
            total = total.map { $0 + snapshot } ?? snapshot
        }
        return total
    }
}

/// This process's CPU time and resident memory, from /proc.
enum ProcessStats {
    static func cpuSeconds() -> Double {
        guard let stat = (try? LocalFiles.readText("/proc/self/stat")) ?? nil,
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func residentBytes() -> Int {
        guard let status = (try? LocalFiles.readText("/proc/self/status")) ?? nil else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return 0
    }
}

