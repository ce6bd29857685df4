import HiscoreCore
import HiscoreWire

/// Who may call what. Roles nest: reader < writer < admin.
///
/// | method | needs |
/// |---|---|
/// | ping, cancel, authenticate | nothing |
/// | get_rank, top, around, entries, count, describe_board, list_boards, subscribe (not feed) | reader |
/// | submit, submit_batch, remove_player, subscribe to the feed | writer |
/// | create_board, delete_board, reset_board, backup | admin |
///
/// A player token reads and subscribes (not the feed, not list_boards) on the boards it names,
/// and submits only its own player id, only on boards created with `client_writes`.
public struct AccessControl: Sendable {
    public let keys: APIKeys
    public let tokens: PlayerTokenVerifier?

    public init(keys: APIKeys = APIKeys(), tokens: PlayerTokenVerifier? = nil) {
        self.keys = keys
        self.tokens = tokens
    }

    /// No keys and no token secret: every call is allowed, and the server must stay on loopback.
    public var isOpen: Bool { keys.isEmpty && tokens == nil }

    /// Turns a presented token (API key or player JWT) into a principal.
    public func authenticate(_ token: String, now: Int64) -> Result<Principal, Status> {
        if isOpen { return .success(.open) }
        if let entry = keys.match(token) { return .success(.key(role: entry.role, name: entry.name)) }
        if let tokens, token.split(separator: ".").count == 3 {
            do {
                return .success(.player(try tokens.verify(token, now: now)))
            } catch {
                return .failure(Status(.unauthenticated, "\(error)"))
            }
        }
        return .failure(Status(.unauthenticated, "unknown API key or player token"))
    }

    /// nil when allowed; otherwise UNAUTHENTICATED (no valid credentials) or PERMISSION_DENIED.
    public func authorize(
        _ principal: Principal?, _ method: RequestMethod, now: Int64, board: (String) -> BoardConfig?
    ) -> Status? {
        switch method {
        case .ping, .cancel, .authenticate: return nil
        default: break
        }
        if isOpen { return nil }
        guard let principal else {
            return Status(
                .unauthenticated,
                "this server requires credentials: send authenticate {token} after the preface, or set auth_token on each call")
        }
        switch principal {
        case .open:
            return nil
        case .key(let role, _):
            let needed = Self.requiredRole(method)
            return role.rank >= needed.rank ? nil
                : Status(.permissionDenied, "\(Self.name(method)) needs role \(needed); this key has role \(role)")
        case .player(let claims):
            if claims.isExpired(at: now, leewaySeconds: PlayerTokenVerifier.leewaySeconds) {
                return Status(.unauthenticated, "player token expired at \(claims.expiresAt) (unix seconds)")
            }
            return authorizePlayer(claims, method, board: board)
        }
    }

    /// One submit of a batch (each item is checked on its own).
    public func authorizeSubmit(_ principal: Principal?, _ request: SubmitRequest, now: Int64, board: (String) -> BoardConfig?) -> Status? {
        authorize(principal, .submit(request), now: now, board: board)
    }

    private func authorizePlayer(_ claims: PlayerClaims, _ method: RequestMethod, board: (String) -> BoardConfig?) -> Status? {
        func readable(_ id: String) -> Status? {
            claims.mayRead(id) ? nil : Status(.permissionDenied, "this player token does not grant board \(id)")
        }
        switch method {
        case .getRank(let request): return readable(request.boardID)
        case .top(let request): return readable(request.boardID)
        case .around(let request): return readable(request.boardID)
        case .entries(let request): return readable(request.boardID)
        case .count(let request): return readable(request.boardID)
        case .describeBoard(let id): return readable(id)
        case .subscribe(let request):
            if request.target == .feed { return Status(.permissionDenied, "the board feed needs role writer") }
            return readable(request.boardID)
        case .submit(let request):
            // The answer carries the player's rank: a token that may not read the board may not
            // write to it either.
            if let denied = readable(request.boardID) { return denied }
            guard request.playerID == claims.playerID else {
                return Status(.permissionDenied, "a player token may only submit its own score (player \(claims.playerID))")
            }
            guard board(request.boardID)?.clientWrites == true else {
                return Status(.permissionDenied, "board \(request.boardID) does not accept scores from game clients (client_writes is off)")
            }
            return nil
        case .submitBatch:
            return nil  // checked per item
        case .listBoards, .createBoard, .deleteBoard, .removePlayer, .backup, .resetBoard, .erasePlayer:
            return Status(.permissionDenied, "\(Self.name(method)) is not allowed with a player token")
        case .ping, .cancel, .authenticate:
            return nil
        }
    }

    static func requiredRole(_ method: RequestMethod) -> Role {
        switch method {
        case .getRank, .top, .around, .entries, .count, .describeBoard, .listBoards, .ping, .cancel, .authenticate:
            return .reader
        case .subscribe(let request):
            return request.target == .feed ? .writer : .reader
        case .submit, .submitBatch, .removePlayer:
            return .writer
        case .createBoard, .deleteBoard, .backup, .resetBoard, .erasePlayer:
            return .admin
        }
    }

    static func name(_ method: RequestMethod) -> String { method.name }
}

extension Role {
    var rank: Int {
        switch self {
        case .player: 0
        case .reader: 1
        case .writer: 2
        case .admin: 3
        }
    }
}
