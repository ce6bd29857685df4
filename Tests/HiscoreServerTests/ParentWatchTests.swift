import Foundation
import HiscoreTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `hiscored --exit-with-parent`, which every test server runs with (`ServerProcess`), so that a
/// killed test run does not leave its servers behind.
///
/// The shells here are started with posix_spawn, not Foundation's `Process`: that one hands its
/// child a socket whose closing it takes for the child's exit, and a background job of the
/// shell keeps the socket open after the shell is gone.
@Suite("hiscored --exit-with-parent")
struct ParentWatchTests {
    /// A child process with its input and output on pipes of ours.
    private struct Child {
        let pid: pid_t
        /// Our ends: the child's input (write) and output (read).
        let input: Int32
        let output: Int32

        static func spawn(_ arguments: [String]) throws -> Child {
            // Socket pairs rather than pipes: they can be made close-on-exec atomically, so no
            // process another test spawns meanwhile inherits an end and delays the end of file.
            var inPipe: [Int32] = [0, 0]
            var outPipe: [Int32] = [0, 0]
            let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            guard socketpair(AF_UNIX, type, 0, &inPipe) == 0, socketpair(AF_UNIX, type, 0, &outPipe) == 0 else {
                throw POSIXError(.EMFILE)
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2)
            let argv = arguments.map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            // The environment without HISCORE_EXIT_WITH_*: the flag on the command line decides.
            let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HISCORE_EXIT_WITH_") }
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { for pointer in envp { free(pointer) } }
            var pid: pid_t = 0
            let status = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
            close(inPipe[0])
            close(outPipe[1])
            guard status == 0 else {
                close(inPipe[1])
                close(outPipe[0])
                throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EINVAL)
            }
            return Child(pid: pid, input: inPipe[1], output: outPipe[0])
        }

        /// Waits (bounded) for the child itself to exit; false if it did not in time.
        func waitForExit(timeout: Duration) -> Bool {
            let deadline = ContinuousClock.now + timeout
            var status: Int32 = 0
            while ContinuousClock.now < deadline {
                let result = waitpid(pid, &status, WNOHANG)
                if result == pid || (result < 0 && errno == ECHILD) { return true }
                usleep(10_000)
            }
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return false
        }

        /// Reads the output until it contains `text`, or until its end of file (every process
        /// holding it has exited) when `text` is nil; bounded by `timeout`. Returns what was read
        /// and whether the condition was met.
        func read(until text: String?, timeout: Duration) -> (text: String, met: Bool) {
            var log = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let text, log.contains(text) { return (log, true) }
                var ready = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 100) >= 0 else { break }
                guard ready.revents != 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { Glibc.read(output, $0.baseAddress, $0.count) }
                if count <= 0 { return (log, text == nil) }
                log += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            return (log, text.map { log.contains($0) } ?? false)
        }
    }

    private static func hiscored(_ directory: TemporaryDirectory) -> String {
        "\"\(ServerProcess.binary.path)\" --host 127.0.0.1 --port 0 --admin-port -1 --data-dir \"\(directory.path)\" --durability memory --exit-with-parent"
    }

    @Test("hiscored stops once the shell that started it exits")
    func stopsWithItsParent() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let (started, stopped, shellExited, log) = try await offCooperativePool { () throws -> (Bool, Bool, Bool, String) in
            // The shell starts hiscored in the background and waits for a line on its input;
            // closing that input ends the shell, hiscored's parent. hiscored writes to the
            // shell's output, whose end of file then says that it exited too.
            let shell = try Child.spawn(["sh", "-c", Self.hiscored(directory) + " & read line"])
            defer { close(shell.output) }
            let (head, started) = shell.read(until: "listening on", timeout: .seconds(20))
            close(shell.input)
            let shellExited = shell.waitForExit(timeout: .seconds(20))
            let (tail, stopped) = shell.read(until: nil, timeout: .seconds(20))
            return (started, stopped, shellExited, head + tail)
        }
        #expect(started, "hiscored did not start: \(log)")
        #expect(shellExited)
        #expect(stopped, "hiscored still running 20 s after its parent exited: \(log)")
        #expect(log.contains("the parent process exited") && log.contains("hiscored stopped"), "\(log)")
    }

    @Test("--exit-with-process: hiscored stops once that process exits, and refuses to start if it is already gone")
    func stopsWithTheNamedProcess() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        // A process of ours that lives until its input closes.
        let watched = try await offCooperativePool { try Child.spawn(["sh", "-c", "read line"]) }
        defer { close(watched.output) }
        let server = try await ServerProcess.start(
            arguments: ["--data-dir", directory.path, "--durability", "memory"],
            environment: ["HISCORE_EXIT_WITH_PROCESS": "\(watched.pid)"])
        close(watched.input)
        let reaped = await offCooperativePool { watched.waitForExit(timeout: .seconds(20)) }
        #expect(reaped)
        // Bounded: SIGKILL after 20 s, which the exit status then shows.
        let status = await server.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "hiscored did not stop by itself once process \(watched.pid) exited")
        #expect(await server.waitForLog("process \(watched.pid) exited"), "\(server.log)")

        // That process is gone (reaped): a server told to follow it does not start.
        await #expect(throws: ServerProcessError.self) {
            _ = try await ServerProcess.start(
                arguments: ["--data-dir", directory.path, "--durability", "memory"],
                environment: ["HISCORE_EXIT_WITH_PROCESS": "\(watched.pid)"])
        }
    }
}
