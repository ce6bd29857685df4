/*-----------------------------------------------------------------------------
 * A connection's calls in flight, found by serial or by the client's call id
 *
 * Every call a connection admits is entered here and taken out when it is answered
 * or cancelled: two lookups by serial (is it still live, deliver its answer) and
 * one by call id (is that id already in flight) per call, an insertion and a
 * removal in each direction. Swift's Dictionary did this at ~5% of a pipelined
 * submit's server CPU: a SipHash per lookup, and a removal re-hashes the entries
 * after the removed one to decide which to shift back.
 *
 * Layout: two open-addressing tables of parallel arrays, power-of-two capacity,
 * linear probing, at most half full (they double when they reach it):
 *   serial  -> call (and the call's id), keyed by serials, which count up from 1
 *   call id -> serial, keyed by the client's ids (any UInt64, 0 included)
 * A bucket's home is Fibonacci hashing of the key (multiply by 2^64/phi, keep the
 * top bits): consecutive serials land on spread-out buckets. Removal shifts the
 * following entries of the run back (Knuth's algorithm R), so there are no
 * tombstones and a probe stops at the first empty bucket.
 *
 * Cost: O(1) expected per operation, no hashing beyond one multiply. A client
 * that picks call ids colliding on one bucket makes its own operations linear in
 * its calls in flight, which `ServerLimits.maxInflightCalls` bounds (256 by
 * default); it cannot affect other connections. Memory: 2 x capacity x (16 bytes
 * + one `Call`), capacity <= 4 x the largest number of calls in flight.
 *---------------------------------------------------------------------------*/

struct InflightCalls<Call> {
    private static var emptySerial: UInt64 { 0 }
    private static var initialCapacity: Int { 16 }

    /// By serial: the serial (0 = empty bucket), the client's call id, the call.
    private var serials: [UInt64] = []
    private var callIDs: [UInt64] = []
    private var calls: [Call?] = []
    /// By call id: the call id and its serial (0 = empty bucket).
    private var idKeys: [UInt64] = []
    private var idSerials: [UInt64] = []
    private var shift = 64
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    private var mask: Int { serials.count - 1 }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> UInt64(shift))
    }

    /// True while the call of `serial` is in flight.
    func contains(serial: UInt64) -> Bool { bucket(ofSerial: serial) != nil }

    /// The serial of the in-flight call the client knows as `callID`.
    func serial(forCallID callID: UInt64) -> UInt64? {
        guard count > 0 else { return nil }
        var index = home(callID)
        while idSerials[index] != Self.emptySerial {
            if idKeys[index] == callID { return idSerials[index] }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Enters a call. `serial` (> 0) and `callID` must not be in flight already.
    mutating func insert(serial: UInt64, callID: UInt64, _ call: Call) {
        precondition(serial != Self.emptySerial, "serials start at 1")
        assert(!contains(serial: serial) && self.serial(forCallID: callID) == nil, "already in flight")
        if (count + 1) * 2 > serials.count { grow() }
        var index = home(serial)
        while serials[index] != Self.emptySerial { index = (index + 1) & mask }
        serials[index] = serial
        callIDs[index] = callID
        calls[index] = call
        placeID(callID, serial: serial)
        count += 1
    }

    /// Takes out the call of `serial`: its client call id and the call, or nil if not in flight.
    mutating func remove(serial: UInt64) -> (callID: UInt64, call: Call)? {
        guard let index = bucket(ofSerial: serial), let call = calls[index] else { return nil }
        let callID = callIDs[index]
        removeSerialBucket(at: index)
        removeID(callID)
        count -= 1
        return (callID, call)
    }

    /// Takes out the call the client knows as `callID`: its serial and the call, or nil.
    mutating func remove(callID: UInt64) -> (serial: UInt64, call: Call)? {
        guard let serial = serial(forCallID: callID), let (_, call) = remove(serial: serial) else { return nil }
        return (serial, call)
    }

    mutating func removeAll() {
        self = InflightCalls()
    }

    // MARK: - Buckets

    private func bucket(ofSerial serial: UInt64) -> Int? {
        guard count > 0, serial != Self.emptySerial else { return nil }
        var index = home(serial)
        while serials[index] != Self.emptySerial {
            if serials[index] == serial { return index }
            index = (index + 1) & mask
        }
        return nil
    }

    private mutating func placeID(_ callID: UInt64, serial: UInt64) {
        var index = home(callID)
        while idSerials[index] != Self.emptySerial { index = (index + 1) & mask }
        idKeys[index] = callID
        idSerials[index] = serial
    }

    private mutating func removeID(_ callID: UInt64) {
        var index = home(callID)
        while idKeys[index] != callID || idSerials[index] == Self.emptySerial {
            assert(idSerials[index] != Self.emptySerial, "a call's id is in the id table")
            index = (index + 1) & mask
        }
        // Algorithm R: pull back each later entry of the run whose home is not in (hole, entry].
        var hole = index
        var next = (hole + 1) & mask
        while idSerials[next] != Self.emptySerial {
            if !Self.isCyclically(home(idKeys[next]), after: hole, upTo: next) {
                idKeys[hole] = idKeys[next]
                idSerials[hole] = idSerials[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        idSerials[hole] = Self.emptySerial
    }

    private mutating func removeSerialBucket(at index: Int) {
        var hole = index
        var next = (hole + 1) & mask
        while serials[next] != Self.emptySerial {
            if !Self.isCyclically(home(serials[next]), after: hole, upTo: next) {
                serials[hole] = serials[next]
                callIDs[hole] = callIDs[next]
                calls[hole] = calls[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        serials[hole] = Self.emptySerial
        calls[hole] = nil
    }

    /// True when `position` lies in the cyclic interval (start, end].
    @inline(__always)
    private static func isCyclically(_ position: Int, after start: Int, upTo end: Int) -> Bool {
        start <= end ? (start < position && position <= end) : (start < position || position <= end)
    }

    private mutating func grow() {
        let capacity = max(Self.initialCapacity, serials.count * 2)
        let oldSerials = serials
        let oldCallIDs = callIDs
        let oldCalls = calls
        serials = Array(repeating: Self.emptySerial, count: capacity)
        callIDs = Array(repeating: 0, count: capacity)
        calls = Array(repeating: nil, count: capacity)
        idKeys = Array(repeating: 0, count: capacity)
        idSerials = Array(repeating: Self.emptySerial, count: capacity)
        shift = 64 - capacity.trailingZeroBitCount
        for index in oldSerials.indices where oldSerials[index] != Self.emptySerial {
            var bucket = home(oldSerials[index])
            while serials[bucket] != Self.emptySerial { bucket = (bucket + 1) & mask }
            serials[bucket] = oldSerials[index]
            callIDs[bucket] = oldCallIDs[index]
            calls[bucket] = oldCalls[index]
            placeID(oldCallIDs[index], serial: oldSerials[index])
        }
    }
}
