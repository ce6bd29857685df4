import Foundation
import Testing

/// Runs `body`, and the child tasks it starts, on threads of its own rather than on Swift's
/// cooperative pool. For test code that blocks (processes, pipes, mounts, conditions, sleeps,
/// fsyncs): the pool is as wide as the machine has cores, two in CI, and a test blocked on it
/// stalls every other test's tasks. `body` stays in the test's task, so `#expect` in it counts
/// for the test (on a detached thread it would not).
public func offCooperativePool<T>(_ body: () async throws -> T) async rethrows -> T {
    guard #available(macOS 15, *) else { return try await body() }
    return try await withTaskExecutorPreference(ThreadPerJobExecutor.shared, operation: body)
}

/// Runs each job on a new thread: a job that blocks holds no thread another job waits for.
@available(macOS 15, *)
private final class ThreadPerJobExecutor: TaskExecutor {
    static let shared = ThreadPerJobExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        Thread.detachNewThread { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// `.offCooperativePool`: runs each case of a test (of each test of a suite) in
/// `offCooperativePool`. For synchronous tests that block or compute for seconds: Swift Testing
/// runs them on the cooperative pool too, where servers' tasks queue behind them.
public struct OffCooperativePoolTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // As offCooperativePool (whose name here would mean the trait).
        guard #available(macOS 15, *) else { return try await function() }
        try await withTaskExecutorPreference(ThreadPerJobExecutor.shared, operation: function)
    }
}

extension Trait where Self == OffCooperativePoolTrait {
    public static var offCooperativePool: Self { Self() }
}
