#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import HiscoreCore

/// The engine's large blocks go to an installed allocator, and never cross allocators: each is
/// resized and freed by the one that made it (a block growing past the threshold is copied into
/// it). The allocator installed here delegates to the C allocator and records which blocks it
/// handed out; it stays installed for the rest of the test process (`LargeBlocks.install` is
/// once per process), which changes nothing for other tests. Other tests' partitions made before
/// the install free their large blocks through it afterwards (a server installs before any
/// partition exists): the checks below follow this test's own blocks only.
@Suite("Large engine blocks")
struct LargeBlockTests {
    /// Blocks handed out by the recording allocator, and operations on blocks it did not make.
    final class Ledger: Sendable {
        struct State {
            var live: Set<UInt> = []
            var made = 0
            var freed = 0
            /// Blocks it was asked to resize or free without having made them.
            var foreign: Set<UInt> = []
        }
        let state = Mutex(State())

        func made(_ pointer: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
            if let pointer { state.withLock { $0.live.insert(UInt(bitPattern: pointer)); $0.made += 1 } }
            return pointer
        }

        /// Takes `pointer` out of the ledger; false if it was not one of its blocks.
        func release(_ pointer: UnsafeMutableRawPointer) -> Bool {
            state.withLock {
                guard $0.live.remove(UInt(bitPattern: pointer)) != nil else {
                    $0.foreign.insert(UInt(bitPattern: pointer))
                    return false
                }
                $0.freed += 1
                return true
            }
        }
    }

    static let ledger = Ledger()

    /// Installed once; false if another allocator was installed first in this process.
    static let installed: Bool = {
        let ledger = Self.ledger
        return LargeBlocks.install(LargeBlockAllocator(
            allocate: { ledger.made(malloc($0)) },
            allocateZeroed: { ledger.made(calloc(1, $0)) },
            reallocate: { pointer, size in
                _ = ledger.release(pointer)
                return ledger.made(realloc(pointer, size))
            },
            free: { pointer in
                _ = ledger.release(pointer)
                free(pointer)  // every block is the C allocator's underneath
            }))
    }()

    private func isLive(_ pointer: UnsafeMutableRawPointer) -> Bool {
        Self.ledger.state.withLock { $0.live.contains(UInt(bitPattern: pointer)) }
    }

    private func wasForeign(_ pointer: UnsafeMutableRawPointer) -> Bool {
        Self.ledger.state.withLock { $0.foreign.contains(UInt(bitPattern: pointer)) }
    }

    @Test("blocks cross the threshold by a copy, and are freed by the allocator that made them")
    func blocksStayWithTheirAllocator() throws {
        try #require(Self.installed, "another large-block allocator was installed in this process")
        let large = LargeBlocks.minimumBytes

        let direct = engineAllocate(large)
        #expect(isLive(direct), "a block of the threshold's size comes from the large-block allocator")
        let zeroed = engineAllocateZeroed(large * 2)
        #expect(isLive(zeroed))
        #expect(UnsafeRawBufferPointer(start: zeroed, count: large * 2).allSatisfy { $0 == 0 })

        // Grown past the threshold from a C allocator's block: copied into the large allocator,
        // which never sees the old block.
        let small = engineAllocate(1024)
        #expect(!isLive(small))
        for offset in 0..<1024 { small.storeBytes(of: UInt8(truncatingIfNeeded: offset), toByteOffset: offset, as: UInt8.self) }
        let grown = engineReallocate(small, from: 1024, to: large * 2)
        #expect(isLive(grown))
        #expect(!wasForeign(small), "the C allocator's block was handed to the large-block allocator")
        #expect((0..<1024).allSatisfy { grown.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: $0) })

        // Grown within the large allocator: resized there.
        let regrown = engineReallocate(grown, from: large * 2, to: large * 4)
        #expect(isLive(regrown))
        #expect((0..<1024).allSatisfy { regrown.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: $0) })

        // Shrunk below the threshold: copied back out.
        let shrunk = engineReallocate(regrown, from: large * 4, to: 512)
        #expect(!isLive(shrunk) && !isLive(regrown))
        #expect((0..<512).allSatisfy { shrunk.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: $0) })

        engineFree(direct, bytes: large)
        engineFree(zeroed, bytes: large * 2)
        engineFree(shrunk, bytes: 512)
        #expect(!isLive(direct) && !isLive(zeroed))
        #expect(!wasForeign(shrunk))
    }

    @Test("a partition's node chunks, index and pages go through the installed allocator")
    func partitionUsesIt() throws {
        try #require(Self.installed, "another large-block allocator was installed in this process")
        let before = Self.ledger.state.withLock { ($0.made, $0.freed) }
        do {
            let partition = BoardPartition(config: BoardConfig.defaultConfig(id: "large-blocks"))
            // 50K players: node chunks, an index table and entry pages of 64 KiB and up, the
            // first chunk and the first page grown by reallocation past the threshold.
            for index in 0..<50_000 {
                _ = try partition.write(
                    playerID: "p:\(index)", score: Int64(index &* 7919 % 50_000), subscore: 0, metadata: nil,
                    sequence: UInt64(index + 1))
            }
            partition.removeAll()
            #expect(partition.count == 0)
        }
        let after = Self.ledger.state.withLock { ($0.made, $0.freed) }
        #expect(after.0 > before.0, "no large block was allocated")
        #expect(after.1 > before.1, "no large block was freed")
    }
}
