import Foundation
import HiscoreClient
import HiscoreServer
import HiscoreTestSupport
import HiscoreWire
import Testing

@Suite("Versions")
struct VersionTests {
    @Test("hiscored --version, hiscore --version and the server's hello name the same release")
    func oneVersion() async throws {
        let cli = try await runCLI(["--version"])
        #expect(cli.status == 0 && cli.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == HiscoreVersion.current, "\(cli)")

        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = ["--version"]
        let out = Pipe()
        process.standardOutput = out
        let printed = try await offCooperativePool {
            try process.run()
            let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return printed
        }
        #expect(process.terminationStatus == 0 && printed.trimmingCharacters(in: .whitespacesAndNewlines) == HiscoreVersion.current)

        try await withServer(shards: 1) { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            #expect(client.hello.serverVersion == HiscoreVersion.current)
            try await client.close()
        }
    }
}
