import HiscoreWire

/// Prometheus text exposition (version 0.0.4) of a scrape.
struct MetricsRenderer {
    var lines: [String] = []

    mutating func header(_ name: String, _ type: String, _ help: String) {
        lines.append("# HELP \(name) \(help)")
        lines.append("# TYPE \(name) \(type)")
    }

    mutating func sample(_ name: String, _ value: Double) {
        sample(name, [], value)
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        let labelText = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
        let valueText = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        lines.append("\(name)\(labelText) \(valueText)")
    }

    static func render(
        _ snapshot: MetricsSnapshot?, gauges: ServerGauges
    ) -> String {
        var out = MetricsRenderer()
        if let snapshot {
            out.header("hiscore_calls_total", "counter", "Calls answered, by method.")
            for method in MetricMethod.allCases where snapshot.calls[method.rawValue] > 0 {
                out.sample("hiscore_calls_total", [("method", method.label)], Double(snapshot.calls[method.rawValue]))
            }
            out.header("hiscore_call_status_total", "counter", "Calls answered, by status code.")
            for code in StatusCode.allCases where snapshot.statuses[Int(code.rawValue)] > 0 {
                out.sample("hiscore_call_status_total", [("code", "\(code)")], Double(snapshot.statuses[Int(code.rawValue)]))
            }
            out.header("hiscore_call_latency_seconds", "histogram", "Time from reading a request to writing its answer.")
            for method in MetricMethod.allCases where snapshot.calls[method.rawValue] > 0 {
                var cumulative = 0
                let buckets = snapshot.latency[method.rawValue]
                for (index, bound) in LoopMetrics.bucketBounds.enumerated() {
                    cumulative += buckets[index]
                    out.sample("hiscore_call_latency_seconds_bucket", [("method", method.label), ("le", "\(Double(bound) / 1e6)")], Double(cumulative))
                }
                cumulative += buckets[LoopMetrics.bucketBounds.count]
                out.sample("hiscore_call_latency_seconds_bucket", [("method", method.label), ("le", "+Inf")], Double(cumulative))
                out.sample("hiscore_call_latency_seconds_sum", [("method", method.label)], Double(snapshot.latencySumMicros[method.rawValue]) / 1e6)
                out.sample("hiscore_call_latency_seconds_count", [("method", method.label)], Double(cumulative))
            }
            out.header("hiscore_received_bytes_total", "counter", "Frame bytes read from clients.")
            out.sample("hiscore_received_bytes_total", Double(snapshot.bytesIn))
            out.header("hiscore_sent_bytes_total", "counter", "Frame bytes written to clients.")
            out.sample("hiscore_sent_bytes_total", Double(snapshot.bytesOut))
            out.header("hiscore_connections_opened_total", "counter", "Client connections accepted.")
            out.sample("hiscore_connections_opened_total", Double(snapshot.connectionsOpened))
            out.header("hiscore_protocol_faults_total", "counter", "Connections closed for a bad preface or frame.")
            out.sample("hiscore_protocol_faults_total", Double(snapshot.protocolFaults))
            out.header(
                "hiscore_batch_item_holds_total", "counter",
                "Times a connection stopped reading until its submit batches in flight went under max_inflight_batch_items, or its loop went under its share of max_server_inflight_batch_items.")
            out.sample("hiscore_batch_item_holds_total", Double(snapshot.batchItemHolds))
            out.header("hiscore_subscriptions", "gauge", "Open subscriptions.")
            out.sample("hiscore_subscriptions", Double(snapshot.subscriptionsOpened - snapshot.subscriptionsClosed))
            out.header("hiscore_stream_flushes_total", "counter", "Stream hub flushes that sent events.")
            out.sample("hiscore_stream_flushes_total", Double(snapshot.streamFlushes))
            out.header("hiscore_stream_events_total", "counter", "Stream events sent (snapshots, changes, feed batches).")
            out.sample("hiscore_stream_events_total", Double(snapshot.streamEvents))
            out.header("hiscore_stream_flush_busy_seconds_total", "counter", "Event-loop time the stream hubs spent in their flushes (not waiting for shards).")
            out.sample("hiscore_stream_flush_busy_seconds_total", Double(snapshot.streamFlushBusyMicros) / 1e6)
            out.header("hiscore_stream_widened_flushes_total", "counter", "Flushes run with every interval widened because flushes were too costly.")
            out.sample("hiscore_stream_widened_flushes_total", Double(snapshot.streamWidenedFlushes))
        }
        out.header("hiscore_connections", "gauge", "Open client connections.")
        out.sample("hiscore_connections", Double(gauges.connections))
        out.header("hiscore_boards", "gauge", "Boards on the server.")
        out.sample("hiscore_boards", Double(gauges.boards))
        out.header("hiscore_entries", "gauge", "Entries held by each shard.")
        for (shard, entries) in gauges.entriesPerShard.enumerated() {
            out.sample("hiscore_entries", [("shard", "\(shard)")], Double(entries))
        }
        out.header(
            "hiscore_shard_log_failed", "gauge",
            "1 when the shard's log failed (a write or fsync error): its writes get UNAVAILABLE until a restart.")
        for (shard, failed) in gauges.logFailedPerShard.enumerated() {
            out.sample("hiscore_shard_log_failed", [("shard", "\(shard)")], failed ? 1 : 0)
        }
        out.header(
            "hiscore_catalog_failed", "gauge",
            "1 when the board catalog failed (an fdatasync error): board creations, deletions and season resets get UNAVAILABLE until a restart.")
        out.sample("hiscore_catalog_failed", gauges.catalogFailed ? 1 : 0)
        out.header(
            "hiscore_snapshots_total", "counter",
            "Snapshots of the shard's data published (its older log segments and snapshot deleted) or failed, since start-up.")
        for (shard, counts) in gauges.snapshotsPerShard.enumerated() {
            out.sample("hiscore_snapshots_total", [("shard", "\(shard)"), ("result", "published")], Double(counts.published))
            out.sample("hiscore_snapshots_total", [("shard", "\(shard)"), ("result", "failed")], Double(counts.failed))
        }
        out.header("hiscore_snapshot_running", "gauge", "1 while a snapshot of the shard is being written.")
        for (shard, counts) in gauges.snapshotsPerShard.enumerated() {
            out.sample("hiscore_snapshot_running", [("shard", "\(shard)")], counts.running ? 1 : 0)
        }
        out.header("hiscore_jemalloc_allocated_bytes", "gauge", "Bytes allocated by the application (jemalloc stats.allocated).")
        out.sample("hiscore_jemalloc_allocated_bytes", Double(gauges.allocated))
        out.header("hiscore_jemalloc_resident_bytes", "gauge", "Bytes in physically resident allocator pages (stats.resident).")
        out.sample("hiscore_jemalloc_resident_bytes", Double(gauges.resident))
        out.header("hiscore_jemalloc_retained_bytes", "gauge", "Bytes retained by the allocator for reuse (stats.retained).")
        out.sample("hiscore_jemalloc_retained_bytes", Double(gauges.retained))
        out.header(
            "hiscore_jemalloc_oversize_threshold_bytes", "gauge",
            "Allocations of this size and larger use jemalloc's oversize arena, whose freed pages are returned at once (opt.oversize_threshold; hiscored's default 131072, MALLOC_CONF overrides); 0 when there is no such arena or the option cannot be read.")
        out.sample("hiscore_jemalloc_oversize_threshold_bytes", Double(gauges.oversizeThreshold))
        out.header("hiscore_allocations_total", "counter", "Heap allocations made by the process (jemalloc nrequests, small + large; thread-cache counts are merged when a cache flushes).")
        out.sample("hiscore_allocations_total", Double(gauges.allocations))
        out.header("hiscore_memory_ceiling_bytes", "gauge", "Configured memory ceiling (0 = none).")
        out.sample("hiscore_memory_ceiling_bytes", Double(gauges.memoryCeiling))
        out.header("hiscore_memory_ceiling_exceeded", "gauge", "1 while new players are refused for memory.")
        out.sample("hiscore_memory_ceiling_exceeded", gauges.memoryCeilingExceeded ? 1 : 0)
        out.header(
            "hiscore_top_cache_bytes", "gauge",
            "Bytes the boards' cached tops are counted as (bounded by max_top_cache_bytes).")
        out.sample("hiscore_top_cache_bytes", Double(gauges.topCacheBytes))
        out.header(
            "hiscore_feed_backlog_bytes", "gauge",
            "Bytes the feeds' backlogs hold over every board (bounded by max_feed_backlog_bytes).")
        out.sample("hiscore_feed_backlog_bytes", Double(gauges.feedBacklogBytes))
        out.header(
            "hiscore_inflight_batch_items", "gauge",
            "Submit-batch items in flight over the server (bounded by max_server_inflight_batch_items, plus about one batch per writing connection).")
        out.sample("hiscore_inflight_batch_items", Double(gauges.inflightBatchItems))
        out.header("process_cpu_seconds_total", "counter", "User and system CPU time of the process.")
        out.sample("process_cpu_seconds_total", gauges.cpuSeconds)
        out.header("process_resident_memory_bytes", "gauge", "Resident set size.")
        out.sample("process_resident_memory_bytes", Double(gauges.residentBytes))
        return out.lines.joined(separator: "\n") + "\n"
    }
}

struct ServerGauges: Sendable {
    var connections: Int
    var boards: Int
    var entriesPerShard: [Int]
    var logFailedPerShard: [Bool] = []
    var catalogFailed = false
    var topCacheBytes = 0
    var feedBacklogBytes = 0
    var inflightBatchItems = 0
    var snapshotsPerShard: [(published: Int, failed: Int, running: Bool)] = []
    var allocated: Int
    var resident: Int
    var retained: Int
    var allocations: Int
    /// jemalloc's `opt.oversize_threshold` (0 when unknown, or when jemalloc runs without the
    /// oversize arena: it stores 0 for a threshold out of its range).
    var oversizeThreshold = 0
    var memoryCeiling: Int
    var memoryCeilingExceeded: Bool
    var cpuSeconds: Double
    var residentBytes: Int
}
