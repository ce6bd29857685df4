import HiscoreCore
import HiscoreStorage
import NIOConcurrencyHelpers

/// The boards of the server, by id. Lookups happen on every call from every event loop, creation
/// and deletion rarely, so one lock around a dictionary is enough (uncontended: tens of ns).
final class BoardDirectory: Sendable {
    enum CreateOutcome {
        case created(BoardHandle)
        case existing(BoardHandle)
    }

    enum CreateError: Error {
        case alreadyExistsWithOtherConfig(BoardConfig)
        case tooManyBoards(limit: Int)
        case storage(StorageError)
    }

    private struct State {
        var boards: [String: BoardHandle] = [:]
        var nextIncarnation: UInt64 = 1
    }

    private let state = NIOLockedValueBox(State())
    private let shardCount: Int
    private let maxBoards: Int
    private let persistence: Persistence?

    init(shardCount: Int, maxBoards: Int, persistence: Persistence? = nil, firstIncarnation: UInt64 = 1) {
        self.shardCount = shardCount
        self.maxBoards = maxBoards
        self.persistence = persistence
        state.withLockedValue { $0.nextIncarnation = max(1, firstIncarnation) }
    }

    /// Registers a board read back from the catalog at start-up.
    func restore(_ config: BoardConfig, incarnation: UInt64) -> BoardHandle {
        state.withLockedValue { state in
            let handle = makeHandle(config, incarnation: incarnation)
            state.boards[config.id] = handle
            state.nextIncarnation = max(state.nextIncarnation, incarnation + 1)
            return handle
        }
    }

    func board(_ id: String) -> BoardHandle? {
        state.withLockedValue { $0.boards[id] }
    }

    /// Creates the board, or returns the existing one when its config is identical (creation is
    /// idempotent so that game servers can "ensure" a board at start-up).
    func create(_ config: BoardConfig) throws(CreateError) -> CreateOutcome {
        let result: Result<CreateOutcome, CreateError> = state.withLockedValue { state in
            if let existing = state.boards[config.id] {
                return existing.config == config ? .success(.existing(existing))
                    : .failure(.alreadyExistsWithOtherConfig(existing.config))
            }
            guard state.boards.count < maxBoards else { return .failure(.tooManyBoards(limit: maxBoards)) }
            let handle = makeHandle(config, incarnation: state.nextIncarnation)
            // Durable before anyone can write to it (a rare fsync, under the lock on purpose).
            do throws(StorageError) {
                try persistence?.boardCreated(handle)
            } catch {
                return .failure(.storage(error))
            }
            state.nextIncarnation += 1
            state.boards[config.id] = handle
            return .success(.created(handle))
        }
        return try result.get()
    }

    /// The board, auto-created with the default config when missing.
    func boardCreatingDefault(_ id: String) throws(CreateError) -> BoardHandle {
        if let handle = board(id) { return handle }
        switch try create(BoardConfig.defaultConfig(id: id)) {
        case .created(let handle), .existing(let handle): return handle
        }
    }

    func remove(_ id: String) throws(StorageError) -> BoardHandle? {
        let result: Result<BoardHandle?, StorageError> = state.withLockedValue { state in
            guard let handle = state.boards[id] else { return .success(nil) }
            do throws(StorageError) {
                try persistence?.boardDeleted(handle)
            } catch {
                return .failure(error)
            }
            state.boards[id] = nil
            handle.markDeleted()
            return .success(handle)
        }
        return try result.get()
    }

    /// Boards sorted by id, after `afterID`, at most `limit`; `more` when others follow.
    func list(after afterID: String, limit: Int) -> (boards: [BoardHandle], more: Bool) {
        let all = state.withLockedValue { Array($0.boards.values) }
        let sorted = all.filter { $0.config.id > afterID }.sorted { $0.config.id < $1.config.id }
        return (Array(sorted.prefix(limit)), sorted.count > limit)
    }

    var count: Int { state.withLockedValue { $0.boards.count } }

    private func makeHandle(_ config: BoardConfig, incarnation: UInt64) -> BoardHandle {
        // Dense ranks count distinct scores, which cannot be summed across partitions: such a
        // board lives in one partition, on a shard chosen by its id.
        let single = config.rankMode == .dense || shardCount == 1
        let home = Int(PlayerHash.hash(config.id) % UInt64(shardCount))
        return BoardHandle(
            config: config, incarnation: incarnation, partitionCount: single ? 1 : shardCount, homeShard: home)
    }
}
