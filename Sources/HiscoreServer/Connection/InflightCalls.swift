/// A connection's calls in flight, found by serial or by the client's call id.
///
/// Every call a connection admits is entered here and taken out when it is answered or
/// cancelled: per call, two lookups by serial (is it still live, deliver its answer), one by call
/// id (is that id already in flight), an insertion and a removal in each direction. With Swift
/// dictionaries that was ~5% of a pipelined submit's server CPU (SipHash per lookup; a removal
/// re-hashes the entries after it); two `IntegerKeyTable`s do it for a multiply per lookup.
/// Serials count up from 1 and are unique per connection; call ids are the client's (any UInt64).
struct InflightCalls<Call> {
    private var bySerial: IntegerKeyTable<(callID: UInt64, call: Call)>
    private var serialsByCallID: IntegerKeyTable<UInt64>

    /// `seed`: the tables' hash seed (random unless a test fixes it).
    init(seed: UInt64 = .random(in: .min ... .max)) {
        bySerial = IntegerKeyTable(seed: seed)
        serialsByCallID = IntegerKeyTable(seed: seed)
    }

    var count: Int { bySerial.count }
    var isEmpty: Bool { bySerial.count == 0 }

    /// True while the call of `serial` is in flight.
    func contains(serial: UInt64) -> Bool { bySerial.contains(serial) }

    /// The in-flight call of `serial`.
    func call(serial: UInt64) -> Call? { bySerial.value(for: serial)?.call }

    /// The serial of the in-flight call the client knows as `callID`.
    func serial(forCallID callID: UInt64) -> UInt64? { serialsByCallID.value(for: callID) }

    /// Enters a call. Neither `serial` nor `callID` may be in flight already.
    mutating func insert(serial: UInt64, callID: UInt64, _ call: Call) {
        bySerial.insert(serial, (callID, call))
        serialsByCallID.insert(callID, serial)
    }

    /// Takes out the call of `serial`: its client call id and the call, or nil if not in flight.
    mutating func remove(serial: UInt64) -> (callID: UInt64, call: Call)? {
        guard let entry = bySerial.remove(serial) else { return nil }
        _ = serialsByCallID.remove(entry.callID)
        return entry
    }

    /// Takes out the call the client knows as `callID`: its serial and the call, or nil.
    mutating func remove(callID: UInt64) -> (serial: UInt64, call: Call)? {
        guard let serial = serialsByCallID.remove(callID), let entry = bySerial.remove(serial) else { return nil }
        return (serial, entry.call)
    }

    mutating func removeAll() {
        self = InflightCalls()
    }
}
