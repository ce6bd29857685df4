import CCacheHint
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The hot per-entry record: everything a write, a rank or a lookup reads, in 32 bytes (half a
/// cache line), so one miss brings the key and the id together.
///
/// `id0`/`id1` hold the player id. Ids of up to 15 UTF-8 bytes are inline: bytes 0-14 (little
/// endian over the two words) and the length in the top byte of `id1`; reading one back builds a
/// Swift small string, with no heap allocation. Longer ids live in their own allocation:
/// `id0` = its address, `id1` = `longIDMarker` | length. A free slot has `freeSlotMarker` in the
/// top byte of `id1` and the next free slot in `score`.
struct EntryRecord {
    var score: Int64
    var sequence: UInt64
    var id0: UInt64
    var id1: UInt64

    static let inlineIDCapacity = 15
    static let longIDMarker: UInt64 = 0xFF << 56
    static let freeSlotMarker: UInt64 = 0xFE << 56
    static let tagMask: UInt64 = 0xFF << 56

    @inline(__always) var isFree: Bool { id1 & Self.tagMask == Self.freeSlotMarker }
    @inline(__always) var hasLongID: Bool { id1 & Self.tagMask == Self.longIDMarker }
}

/// A column of `Element`s indexed by slot, stored in pages of 4096 so that growing never copies
/// more than one page and never holds more than one page of slack. Page 0 alone starts small and
/// grows by doubling (a board with 3 players costs a few hundred bytes, not a full page).
///
/// A *lazy* column allocates a page only when a non-default value is first written to it; reading
/// a slot of an absent page yields the zero value (used for subscores and metadata, which most
/// boards never set).
struct PagedColumn<Element: BitwiseCopyable> {
    static var pageShift: Int { 12 }
    static var pageSize: Int { 1 << pageShift }
    static var pageMask: Int { pageSize - 1 }

    let lazy: Bool
    private var pages: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?
    private var tableCapacity = 0
    private(set) var pageCount = 0
    /// Capacity of page 0 in elements (`pageSize` once there is more than one page).
    private(set) var firstPageCapacity = 0
    private(set) var allocatedPages = 0

    init(lazy: Bool) { self.lazy = lazy }

    /// The page table (nil before the first `grow`); valid until the next `grow`.
    var pageTable: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>? { pages }

    var reservedBytes: Int {
        guard pageCount > 0, let pages else { return 0 }
        var bytes = 0
        for index in 0..<pageCount where pages[index] != nil {
            bytes += (index == 0 ? firstPageCapacity : Self.pageSize) * MemoryLayout<Element>.stride
        }
        return bytes + tableCapacity * MemoryLayout<UnsafeMutablePointer<Element>?>.stride
    }

    /// Pointer to `slot`'s element, or nil when its page is absent (lazy column, value zero).
    @inline(__always)
    func pointer(_ slot: UInt32) -> UnsafeMutablePointer<Element>? {
        let index = Int(slot)
        assert(pageCount > 0 && index < (pageCount - 1) * Self.pageSize + firstPageCapacity)
        guard let page = pages.unsafelyUnwrapped[index >> Self.pageShift] else { return nil }
        return page + (index & Self.pageMask)
    }

    /// Pointer to `slot`'s element, allocating (zero-filled) its page if absent.
    @inline(__always)
    mutating func materialized(_ slot: UInt32) -> UnsafeMutablePointer<Element> {
        if let existing = pointer(slot) { return existing }
        let pageIndex = Int(slot) >> Self.pageShift
        let page = Self.allocatePage(elements: pageIndex == 0 ? firstPageCapacity : Self.pageSize)
        pages![pageIndex] = page
        allocatedPages += 1
        return page + (Int(slot) & Self.pageMask)
    }

    private static func allocatePage(elements: Int) -> UnsafeMutablePointer<Element> {
        engineAllocateZeroed(elements * MemoryLayout<Element>.stride).bindMemory(to: Element.self, capacity: elements)
    }

    /// Grows to `capacity` slots: at most `pageSize`, or a multiple of it. New elements are zero.
    mutating func grow(to capacity: Int) {
        assert(capacity <= Self.pageSize || capacity % Self.pageSize == 0)
        let newPageCount = (capacity + Self.pageMask) >> Self.pageShift
        let newFirstCapacity = min(capacity, Self.pageSize)
        assert(newPageCount >= pageCount && newFirstCapacity >= firstPageCapacity)
        if newPageCount > tableCapacity {
            let newTableCapacity = max(newPageCount, tableCapacity * 2, 4)
            let table = UnsafeMutablePointer<UnsafeMutablePointer<Element>?>.allocate(capacity: newTableCapacity)
            table.initialize(repeating: nil, count: newTableCapacity)
            if let pages {
                table.update(from: pages, count: pageCount)
                pages.deallocate()
            }
            pages = table
            tableCapacity = newTableCapacity
        }
        if newFirstCapacity > firstPageCapacity, pageCount > 0, let first = pages![0] {
            let stride = MemoryLayout<Element>.stride
            let moved = engineReallocate(first, from: firstPageCapacity * stride, to: newFirstCapacity * stride)
            (moved + firstPageCapacity * stride).initializeMemory(
                as: UInt8.self, repeating: 0, count: (newFirstCapacity - firstPageCapacity) * stride)
            pages![0] = moved.assumingMemoryBound(to: Element.self)
        }
        firstPageCapacity = newFirstCapacity
        if !lazy {
            for index in 0..<newPageCount where pages![index] == nil {
                pages![index] = Self.allocatePage(elements: index == 0 ? newFirstCapacity : Self.pageSize)
                allocatedPages += 1
            }
        }
        pageCount = newPageCount
    }

    mutating func deallocateAll() {
        if let pages {
            let stride = MemoryLayout<Element>.stride
            for index in 0..<pageCount {
                engineFree(pages[index], bytes: (index == 0 ? firstPageCapacity : Self.pageSize) * stride)
            }
            pages.deallocate()
        }
        self = PagedColumn(lazy: lazy)
    }
}

/// A player id being looked up or stored, packed the way `EntryRecord` stores inline ids.
struct PackedID {
    let bytes: UnsafeRawBufferPointer
    let word0: UInt64
    let word1: UInt64
    let hash: UInt64

    @inline(__always)
    var isInline: Bool { bytes.count <= EntryRecord.inlineIDCapacity }

    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        let length = bytes.count
        if length <= EntryRecord.inlineIDCapacity {
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                if length > 0 { raw.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: length) }
            }
            word0 = UInt64(littleEndian: words.0)
            word1 = UInt64(littleEndian: words.1) | UInt64(length) << 56
            hash = Self.hashInline(word0, word1)
        } else {
            word0 = 0
            word1 = EntryRecord.longIDMarker | UInt64(length)
            hash = Self.hashBytes(bytes)
        }
    }

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        let product = (value ^ 0xA076_1D64_78BD_642F).multipliedFullWidth(by: 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }

    /// Hash of an inline id from its two packed words (wyhash-style multiply-fold).
    @inline(__always)
    static func hashInline(_ word0: UInt64, _ word1: UInt64) -> UInt64 {
        mix(mix(word0) ^ word1 ^ 0x8EBC_6AF0_9C88_C6E3)
    }

    static func hashBytes(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash = UInt64(bytes.count) ^ 0x5896_9C5D_FAB7_1E3B
        var offset = 0
        while offset + 8 <= bytes.count {
            hash = mix(hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if offset < bytes.count {
            var tail: UInt64 = 0
            for index in offset..<bytes.count { tail |= UInt64(bytes[index]) << UInt64((index - offset) * 8) }
            hash = mix(hash ^ tail)
        }
        return mix(hash)
    }
}

/// Entry columns of one partition, indexed by slot: the hot `EntryRecord`s, plus lazily
/// allocated subscore and metadata columns. Slots freed by removals are reused (free list).
/// What the tree needs to derive a slot's key: the page tables of the record and subscore
/// columns, and the codec. A few words, built per operation (the tables move when columns grow).
struct EntryKeys: LeafKeySource {
    let records: UnsafeMutablePointer<UnsafeMutablePointer<EntryRecord>?>?
    let subscores: UnsafeMutablePointer<UnsafeMutablePointer<Int64>?>?
    let codec: KeyCodec

    @inline(__always)
    func key(ofSlot slot: UInt32) -> RankKey {
        let shift = PagedColumn<EntryRecord>.pageShift
        let mask = PagedColumn<EntryRecord>.pageMask
        let page = Int(slot) >> shift
        let record = records.unsafelyUnwrapped[page].unsafelyUnwrapped + (Int(slot) & mask)
        var subscore: Int64 = 0
        if let subscores, let subscorePage = subscores[page] { subscore = subscorePage[Int(slot) & mask] }
        return codec.key(score: record.pointee.score, subscore: subscore, sequence: record.pointee.sequence)
    }

    @inline(__always)
    func prefetchKey(ofSlot slot: UInt32) {
        let page = Int(slot) >> PagedColumn<EntryRecord>.pageShift
        hiscore_prefetch(records.unsafelyUnwrapped[page].unsafelyUnwrapped + (Int(slot) & PagedColumn<EntryRecord>.pageMask))
    }
}

struct EntryStore: LeafKeySource, SlotHashSource {
    static let noSlot: UInt32 = .max

    let codec: KeyCodec
    private(set) var records = PagedColumn<EntryRecord>(lazy: false)
    private(set) var subscores = PagedColumn<Int64>(lazy: true)
    /// Each non-nil value points at a malloc'ed blob: UInt32 length, then the bytes.
    private(set) var metadata = PagedColumn<UnsafeMutableRawPointer?>(lazy: true)
    private(set) var capacity = 0
    /// Slots ever handed out (live or free).
    private(set) var highWater = 0
    private var freeHead = noSlot
    private(set) var liveCount = 0
    /// Bytes of long ids and metadata blobs (malloc'ed individually).
    private(set) var blobBytes = 0

    /// Whether inline ids can be read back as small strings (`SmallASCIIString`), read once
    /// per partition rather than once per id.
    private let smallStringsHold = SmallASCIIString.layoutHolds

    init(codec: KeyCodec) { self.codec = codec }

    var reservedBytes: Int { records.reservedBytes + subscores.reservedBytes + metadata.reservedBytes + blobBytes }

    /// Key view for the tree; rebuild it after any slot allocation.
    @inline(__always)
    var keys: EntryKeys { EntryKeys(records: records.pageTable, subscores: subscores.pageTable, codec: codec) }

    @inline(__always)
    func record(_ slot: UInt32) -> UnsafeMutablePointer<EntryRecord> { records.pointer(slot).unsafelyUnwrapped }

    @inline(__always)
    func subscore(_ slot: UInt32) -> Int64 { subscores.pointer(slot)?.pointee ?? 0 }

    @inline(__always)
    func key(ofSlot slot: UInt32) -> RankKey {
        let record = self.record(slot)
        return codec.key(score: record.pointee.score, subscore: subscore(slot), sequence: record.pointee.sequence)
    }

    // MARK: Slots

    mutating func allocateSlot() -> UInt32 {
        liveCount += 1
        if freeHead != Self.noSlot {
            let slot = freeHead
            let record = self.record(slot)
            assert(record.pointee.isFree)
            freeHead = UInt32(truncatingIfNeeded: record.pointee.score)
            return slot
        }
        if highWater == capacity {
            let pageSize = PagedColumn<EntryRecord>.pageSize
            let newCapacity = capacity < pageSize ? max(8, capacity * 2) : capacity + pageSize
            records.grow(to: newCapacity)
            subscores.grow(to: newCapacity)
            metadata.grow(to: newCapacity)
            capacity = newCapacity
        }
        highWater += 1
        return UInt32(highWater - 1)
    }

    /// Releases the slot's long id and metadata and puts it on the free list.
    mutating func freeSlot(_ slot: UInt32) {
        let record = self.record(slot)
        if record.pointee.hasLongID {
            blobBytes -= Int(record.pointee.id1 & 0xFFFF_FFFF)
            engineFreeSmall(UnsafeMutableRawPointer(bitPattern: UInt(record.pointee.id0)))
        }
        setMetadata(slot, nil)
        if let subscore = subscores.pointer(slot) { subscore.pointee = 0 }
        record.pointee = EntryRecord(
            score: Int64(freeHead), sequence: 0, id0: 0, id1: EntryRecord.freeSlotMarker)
        freeHead = slot
        liveCount -= 1
    }

    mutating func deallocateAll() {
        for slot in 0..<UInt32(highWater) {
            let record = self.record(slot)
            if record.pointee.hasLongID { engineFreeSmall(UnsafeMutableRawPointer(bitPattern: UInt(record.pointee.id0))) }
            if let blob = metadata.pointer(slot)?.pointee { engineFreeSmall(blob) }
        }
        records.deallocateAll()
        subscores.deallocateAll()
        metadata.deallocateAll()
        self = EntryStore(codec: codec)
    }

    // MARK: Ids

    mutating func setID(_ slot: UInt32, _ id: PackedID) {
        let record = self.record(slot)
        if id.isInline {
            record.pointee.id0 = id.word0
            record.pointee.id1 = id.word1
        } else {
            let copy = engineAllocate(id.bytes.count)
            copy.copyMemory(from: id.bytes.baseAddress!, byteCount: id.bytes.count)
            record.pointee.id0 = UInt64(UInt(bitPattern: copy))
            record.pointee.id1 = id.word1
            blobBytes += id.bytes.count
        }
    }

    @inline(__always)
    func idMatches(_ slot: UInt32, _ id: PackedID) -> Bool {
        let record = self.record(slot)
        guard record.pointee.id1 == id.word1 else { return false }
        if id.isInline { return record.pointee.id0 == id.word0 }
        let stored = UnsafeRawPointer(bitPattern: UInt(record.pointee.id0))!
        return memcmp(stored, id.bytes.baseAddress!, id.bytes.count) == 0
    }

    /// True when `slot` may hold the id packed as (`word0`, `word1`): exact for inline ids, only
    /// the length for long ones (whose bytes the packed words do not hold). For prefetching.
    @inline(__always)
    func idMayMatch(_ slot: UInt32, word0: UInt64, word1: UInt64) -> Bool {
        let record = self.record(slot)
        guard record.pointee.id1 == word1 else { return false }
        return word1 & EntryRecord.tagMask == EntryRecord.longIDMarker || record.pointee.id0 == word0
    }

    func hash(ofSlot slot: UInt32) -> UInt64 {
        let record = self.record(slot).pointee
        if !record.hasLongID { return PackedID.hashInline(record.id0, record.id1) }
        let bytes = UnsafeRawBufferPointer(
            start: UnsafeRawPointer(bitPattern: UInt(record.id0)), count: Int(record.id1 & 0xFFFF_FFFF))
        return PackedID.hashBytes(bytes)
    }

    /// Loads the record only: a long id's blob is a second, dependent miss, left to `hash(ofSlot:)`.
    @inline(__always)
    func prefetchHash(ofSlot slot: UInt32) { hiscore_prefetch(record(slot)) }

    @inline(__always)
    func playerID(_ slot: UInt32) -> String {
        var record = self.record(slot).pointee
        if record.hasLongID {
            let bytes = UnsafeRawBufferPointer(
                start: UnsafeRawPointer(bitPattern: UInt(record.id0)), count: Int(record.id1 & 0xFFFF_FFFF))
            return String(decoding: bytes, as: UTF8.self)
        }
        if smallStringsHold, let string = SmallASCIIString.make(record.id0, record.id1) { return string }
        let length = Int(record.id1 >> 56)
        record.id0 = record.id0.littleEndian
        record.id1 = (record.id1 & 0x00FF_FFFF_FFFF_FFFF).littleEndian
        return withUnsafeBytes(of: (record.id0, record.id1)) { raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<length]), as: UTF8.self)
        }
    }

    // MARK: Values

    mutating func setSubscore(_ slot: UInt32, _ value: Int64) {
        if value != 0 {
            subscores.materialized(slot).pointee = value
        } else if let existing = subscores.pointer(slot) {
            existing.pointee = 0
        }
    }

    mutating func setMetadata(_ slot: UInt32, _ bytes: [UInt8]?) {
        if let existing = metadata.pointer(slot), let blob = existing.pointee {
            blobBytes -= 4 + Int(blob.load(as: UInt32.self))  // the length header too, as allocated
            engineFreeSmall(blob)
            existing.pointee = nil
        }
        guard let bytes, !bytes.isEmpty else { return }
        let blob = engineAllocate(4 + bytes.count)
        blob.storeBytes(of: UInt32(bytes.count), as: UInt32.self)
        bytes.withUnsafeBytes { (blob + 4).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        metadata.materialized(slot).pointee = blob
        blobBytes += 4 + bytes.count
    }

    @inline(__always)
    func metadataCount(_ slot: UInt32) -> Int {
        guard let blob = metadata.pointer(slot)?.pointee else { return 0 }
        return Int(blob.load(as: UInt32.self))
    }

    // Inlined, as the other per-slot reads here are: a call takes the store by value, and the
    // caller copied all of it (~190 bytes, memcpy) to pass it, once per entry read.
    @inline(__always)
    func metadataBytes(_ slot: UInt32) -> [UInt8] {
        guard let blob = metadata.pointer(slot)?.pointee else { return [] }
        let length = Int(blob.load(as: UInt32.self))
        return [UInt8](UnsafeRawBufferPointer(start: blob + 4, count: length))
    }
}
