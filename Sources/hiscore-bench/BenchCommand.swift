import ArgumentParser
import HiscoreServer

/// `hiscore-bench`: the project's benchmarks. Results go to stdout as one JSON object per line;
/// human-readable progress goes to stderr.
@main
struct HiscoreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hiscore-bench",
        abstract: "Hiscore benchmarks (run release builds: swift run -c release hiscore-bench ...).",
        subcommands: [EngineCommand.self, ServerCommand.self, StreamsCommand.self, TelemetryCommand.self])
}

struct EngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "The ranking engine alone: memory per entry and ns per operation.")

    @Option(help: "Players to load.") var entries: Int = 1_000_000
    @Option(help: "PRNG seed.") var seed: UInt64 = 42
    @Flag(inversion: .prefixedNo, help: "Give the engine's large blocks the arena hiscored gives them (freed pages returned at once).")
    var promptLargeBlocks = true

    func run() throws {
        guard entries > 0 else { throw ValidationError("--entries must be positive") }
        if promptLargeBlocks && !PromptLargeBlocks.install() { throw ValidationError("jemalloc refused the large-block arena") }
        try runEngineBenchmark(entries: entries, seed: seed)
    }
}
