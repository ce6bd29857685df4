import HiscoreClient
import HiscoreServer
import HiscoreStorage
import Logging
import NIOCore
import NIOPosix
import Testing

/// A server on an ephemeral loopback port, no admin port, memory durability.
func testServerConfiguration(shards: Int = 2) -> ServerConfiguration {
    var config = ServerConfiguration()
    config.host = "127.0.0.1"
    config.port = 0
    config.adminPort = nil
    config.durability = .memory
    config.shards = shards
    return config
}

/// Starts a real server on an ephemeral loopback port, runs `body`, and always shuts it down.
func withServer<T>(
    shards: Int = 2,
    configure: (inout ServerConfiguration) -> Void = { _ in },
    logger: Logger? = nil,
    _ body: (HiscoreServer) async throws -> T
) async throws -> T {
    var config = testServerConfiguration(shards: shards)
    configure(&config)
    var quiet = Logger(label: "hiscored-test")
    quiet.logLevel = .warning
    let server = try await HiscoreServer.start(configuration: config, logger: logger ?? quiet)
    do {
        let result = try await body(server)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

/// A server plus one connected client.
func withClient<T>(
    shards: Int = 2,
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (HiscoreClient, HiscoreServer) async throws -> T
) async throws -> T {
    try await withServer(shards: shards, configure: configure) { server in
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        do {
            let result = try await body(client, server)
            try? await client.close()
            return result
        } catch {
            try? await client.close()
            throw error
        }
    }
}

/// Expects `body` to fail with a HiscoreError of `code`; returns its message.
@discardableResult
func expectStatus(
    _ code: StatusCodeAlias, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> String {
    do {
        try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
        return ""
    } catch let error as HiscoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error.message
    } catch {
        Issue.record("expected HiscoreError \(code), got \(error)", sourceLocation: sourceLocation)
        return ""
    }
}

import HiscoreWire
typealias StatusCodeAlias = HiscoreWire.StatusCode

/// Every entry of `board`, best first, walked page by page with cursors, and the board size the
/// last page reported.
func walkByCursor(_ client: HiscoreClient, board: String, pageSize: UInt32) async throws -> (entries: [WireEntry], boardSize: UInt64) {
    var entries: [WireEntry] = []
    var page = try await client.top(board: board, limit: pageSize)
    entries += page.entries
    while !page.nextCursor.isEmpty {
        page = try await client.top(board: board, limit: pageSize, after: page.nextCursor)
        entries += page.entries
    }
    return (entries, page.boardSize)
}
