import HiscoreCore

/// Which write notes a refresh's counts already reflect: for each shard, the number of the last
/// note it had made when it counted (notes are numbered per shard and board, see `Shard.noteSequences`).
/// A subscriber whose rank came from that refresh must not apply those notes again.
final class StreamCut {
    /// Indexed by shard; 0 = no note from that shard is reflected.
    let sequences: [UInt64]

    init(sequences: [UInt64]) {
        self.sequences = sequences
    }

    func reflects(_ note: WriteNote) -> Bool {
        note.shard < sequences.count && note.sequence <= sequences[note.shard]
    }

    /// Every note this cut reflects has reached the hub (per shard they arrive in order).
    func isCovered(byReceived received: [UInt64]) -> Bool {
        for (shard, sequence) in sequences.enumerated() where sequence > (shard < received.count ? received[shard] : 0) {
            return false
        }
        return true
    }
}
