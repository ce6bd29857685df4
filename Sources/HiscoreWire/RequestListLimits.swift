/// The most elements a decoded request's lists may hold, checked on protobuf-c's element counts
/// before any element becomes a Swift value: a frame of `max_frame_bytes` could otherwise hold
/// hundreds of thousands of 2-byte empty submits, each turned into a Swift value only to have the
/// whole list refused afterwards. The server passes its own limits (`ServerHello` announces them);
/// a client decoding responses has no use for them.
public struct RequestListLimits: Sendable, Equatable {
    /// `SubmitBatchRequest.submits` (the server's `max_batch_submits`).
    public var maxBatchSubmits: Int
    /// `EntriesRequest.player_ids` (the server's `max_players_per_query`).
    public var maxPlayerIDs: Int

    public init(maxBatchSubmits: Int, maxPlayerIDs: Int) {
        self.maxBatchSubmits = maxBatchSubmits
        self.maxPlayerIDs = maxPlayerIDs
    }

    /// No limit beyond what fits in a frame.
    public static let unlimited = RequestListLimits(maxBatchSubmits: .max, maxPlayerIDs: .max)

    func check(_ count: Int, limit: Int, what: String, limitName: String) throws(WireError) {
        guard count <= limit else {
            throw .tooManyElements("\(count) \(what); at most \(limit) allowed (\(limitName))")
        }
    }
}
