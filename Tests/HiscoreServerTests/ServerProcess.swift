import Foundation
import HiscoreTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real `hiscored` process for tests that need one (memory measured alone, SIGKILL, restarts).
/// It is started on an ephemeral port, its log is read for the bound port, and `stop()` (or
/// deinit) always ends it. Its waits (for the log, for the exit) run off the cooperative pool.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    private(set) var adminPortNumber: Int?
    private let stderrPipe = Pipe()
    private(set) var log = ""

    /// The debug build `swift build --build-tests` made.
    static var binary: URL { repositoryRoot.appendingPathComponent(".build/debug/hiscored") }

    /// The debug `hiscore` CLI, built next to `binary`.
    static var cliBinary: URL { binary.deletingLastPathComponent().appendingPathComponent("hiscore") }

    /// The release build `make test` makes before the suites run (`make run` uses it too), for
    /// tests of what only optimized code does: allocation counts.
    static var releaseBinary: URL { repositoryRoot.appendingPathComponent(".build/release/hiscored") }

    private static var repositoryRoot: URL {
        // Tests/HiscoreServerTests/ServerProcess.swift -> repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Starts `hiscored` with `arguments` and reads its log (bounded: `timeout`) until it says
    /// its port; throws `didNotStart` with what it logged if it does not.
    static func start(
        arguments: [String], timeout: Duration = .seconds(20), adminPort: Bool = false, binary: URL = ServerProcess.binary,
        environment: [String: String] = [:]
    ) async throws -> ServerProcess {
        try await offCooperativePool {
            try ServerProcess(arguments: arguments, timeout: timeout, adminPort: adminPort, binary: binary, environment: environment)
        }
    }

    private init(
        arguments: [String], timeout: Duration, adminPort: Bool, binary: URL, environment: [String: String]
    ) throws {
        process.executableURL = binary
        // A test process killed before it could stop its servers (a CI timeout) takes them along.
        process.environment = ProcessInfo.processInfo.environment
            .merging(["HISCORE_EXIT_WITH_PROCESS": "\(getpid())"]) { $1 }.merging(environment) { $1 }
        process.arguments = ["--host", "127.0.0.1", "--port", "0", adminPort ? "--admin-port=0" : "--admin-port=-1"] + arguments
        process.standardError = stderrPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Read the log until the listening line (bounded).
        let handle = stderrPipe.fileHandleForReading
        let deadline = ContinuousClock.now + timeout
        var found: Int?
        var text = ""
        while found == nil && ContinuousClock.now < deadline && process.isRunning {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: #"listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(text[range].split(separator: ":").last ?? "")
            }
        }
        // The admin line follows the listening line.
        if adminPort {
            while adminPortNumber == nil && ContinuousClock.now < deadline && process.isRunning {
                if let range = text.range(of: #"admin HTTP on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    adminPortNumber = Int(text[range].split(separator: ":").last ?? "")
                    break
                }
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
        }
        guard let found else {
            // What it said before it exited (or was stopped) is the reason: read all of it.
            process.terminate()
            text += String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            log = text
            throw ServerProcessError.didNotStart(text)
        }
        log = text
        port = found
    }

    /// Reads the server's log on (bounded: `timeout`) until it contains `text`; false if it
    /// did not say it in time. (Read only when asked: a test must not let the server log more
    /// than a pipe holds, ~64 KB, between reads.)
    func waitForLog(_ text: String, timeout: Duration = .seconds(10)) async -> Bool {
        await offCooperativePool {
            let handle = stderrPipe.fileHandleForReading
            let deadline = ContinuousClock.now + timeout
            while !log.contains(text) && ContinuousClock.now < deadline {
                var ready = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 100) >= 0 else { return false }
                guard ready.revents != 0 else { continue }
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                log += String(decoding: chunk, as: UTF8.self)
            }
            return log.contains(text)
        }
    }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// SIGTERM and wait (bounded); SIGKILL if it does not exit. Returns the exit status.
    @discardableResult
    func stop(timeout: Duration = .seconds(15)) async -> Int32 {
        signal(SIGTERM)
        return await waitForExit(timeout: timeout)
    }

    /// Waits (bounded) for the process to exit; SIGKILL if it does not. Returns the exit status.
    @discardableResult
    func waitForExit(timeout: Duration) async -> Int32 {
        await offCooperativePool {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            return process.terminationStatus
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Runs `body` with a started `hiscored` (see `ServerProcess.start`) and stops it afterwards,
/// also when `body` throws.
func withServerProcess<T>(
    arguments: [String], adminPort: Bool = false, binary: URL = ServerProcess.binary, environment: [String: String] = [:],
    _ body: (ServerProcess) async throws -> T
) async throws -> T {
    let server = try await ServerProcess.start(arguments: arguments, adminPort: adminPort, binary: binary, environment: environment)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

enum ServerProcessError: Error {
    case didNotStart(String)
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
