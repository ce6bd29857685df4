#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import HiscoreCore
import HiscoreTestSupport

/// The naive model every partition query is checked against: a dictionary of entries, sorted on
/// demand. Same write semantics as `BoardPartition`, written as plainly as possible.
struct ReferenceBoard {
    let config: BoardConfig
    let codec: KeyCodec
    var entries: [String: LeaderboardEntry] = [:]

    init(config: BoardConfig) {
        self.config = config
        self.codec = config.codec
    }

    var sorted: [LeaderboardEntry] { entries.values.sorted { $0.key < $1.key } }

    mutating func write(
        playerID: String, score: Int64, subscore: Int64, metadata: [UInt8]?, sequence: UInt64
    ) -> Result<WriteOutcome, WriteError> {
        if let metadata, metadata.count > config.limits.maxMetadataBytes {
            return .failure(.metadataTooLarge(bytes: metadata.count, limit: config.limits.maxMetadataBytes))
        }
        let previous = entries[playerID]
        let base = previous?.score ?? 0
        var newScore: Int64
        switch config.writeOperator {
        case .best, .set: newScore = score
        case .increment:
            let (sum, overflow) = base.addingReportingOverflow(score)
            newScore = overflow ? (score > 0 ? .max : .min) : sum
        case .decrement:
            let (difference, overflow) = base.subtractingReportingOverflow(score)
            newScore = overflow ? (score > 0 ? .min : .max) : difference
        }
        if let previous, config.writeOperator == .best {
            let better = (codec.key(score: score, subscore: subscore, sequence: 0).word0,
                          codec.key(score: score, subscore: subscore, sequence: 0).word1)
            let old = (previous.key.word0, previous.key.word1)
            if !(better < old) {
                return .success(WriteOutcome(previous: previous, current: previous, keyChanged: false, created: false, accepted: false))
            }
            newScore = score
        }
        let keyChanged = previous == nil || previous!.score != newScore || previous!.subscore != subscore
        let newSequence = keyChanged ? sequence : previous!.sequence
        let key = codec.key(score: newScore, subscore: subscore, sequence: newSequence)
        if keyChanged && entries.values.contains(where: { $0.key == key }) {
            return .failure(.duplicateKey(sequence: sequence))
        }
        let current = LeaderboardEntry(
            playerID: playerID, score: newScore, subscore: subscore,
            metadata: metadata ?? previous?.metadata ?? [], sequence: newSequence, key: key)
        entries[playerID] = current
        return .success(WriteOutcome(
            previous: previous, current: current, keyChanged: keyChanged, created: previous == nil, accepted: true))
    }

    func countBetter(_ key: RankKey) -> Int { entries.values.count { $0.key < key } }
    func countBetterOrEqual(_ key: RankKey) -> Int { entries.values.count { $0.key <= key } }

    func distinctBetter(_ key: RankKey) -> Int {
        Set(entries.values.filter { ($0.key.word0, $0.key.word1) < (key.word0, key.word1) }
            .map { [$0.key.word0, $0.key.word1] }).count
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
