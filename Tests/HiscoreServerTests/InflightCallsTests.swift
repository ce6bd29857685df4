import Testing
@testable import HiscoreServer

/// `InflightCalls` against two dictionaries (serial -> (call id, call), call id -> serial) over
/// random admissions, answers and cancels. Deterministic per seed (printed on failure; override
/// with HISCORE_TEST_SEED).
@Suite("In-flight calls")
struct InflightCallsTests {
    struct Model {
        var bySerial: [UInt64: (callID: UInt64, call: Int)] = [:]
        var byCallID: [UInt64: UInt64] = [:]
        /// The live serials in admission order (dictionary order differs between runs).
        var live: [UInt64] = []

        mutating func forget(serial: UInt64) {
            if let index = live.firstIndex(of: serial) { live.remove(at: index) }
        }
    }

    /// Call ids drawn from `idSpace` (small spaces reuse ids as soon as they are free, as clients
    /// do); `colliding` makes every id a multiple of 2^58, which Fibonacci hashing sends to a few
    /// buckets of any table up to 64 buckets: long probe runs, and removals in their middle.
    @Test("matches a pair of dictionaries over random calls", arguments: [(8, false), (300, false), (1 << 40, false), (64, true)])
    func matchesDictionaries(idSpace: UInt64, colliding: Bool) {
        let seed = DifferentialServerTests.seed()
        var random = SplitMix64(seed: seed)
        var table = InflightCalls<Int>()
        var model = Model()
        var nextSerial: UInt64 = 1
        for step in 0..<20_000 {
            let context = "seed \(seed), step \(step)"
            let drawn = random.next(below: idSpace)
            let callID = colliding ? drawn << 58 : drawn
            switch random.next(below: 10) {
            case 0..<5:
                // Admit, unless the id is in flight (the handler refuses those) or 256 calls are.
                guard model.byCallID[callID] == nil, model.bySerial.count < 256 else {
                    #expect(table.serial(forCallID: callID) == model.byCallID[callID], "\(context)")
                    continue
                }
                let serial = nextSerial
                nextSerial += 1
                let call = Int(truncatingIfNeeded: random.next())
                table.insert(serial: serial, callID: callID, call)
                model.bySerial[serial] = (callID, call)
                model.byCallID[callID] = serial
                model.live.append(serial)
            case 5..<8:
                // Answer a call by serial: a live one mostly, sometimes one already gone.
                let pick = random.next(below: UInt64(model.live.count) + 1)
                let serial = pick < model.live.count ? model.live[Int(pick)] : random.next(below: nextSerial + 1)
                let removed = table.remove(serial: serial)
                let expected = model.bySerial.removeValue(forKey: serial)
                #expect(removed?.callID == expected?.callID && removed?.call == expected?.call, "\(context)")
                if let expected {
                    model.byCallID[expected.callID] = nil
                    model.forget(serial: serial)
                }
            case 8:
                // Cancel by the client's call id (in flight or not).
                let removed = table.remove(callID: callID)
                let serial = model.byCallID.removeValue(forKey: callID)
                #expect(removed?.serial == serial, "\(context)")
                if let serial {
                    #expect(removed?.call == model.bySerial.removeValue(forKey: serial)?.call, "\(context)")
                    model.forget(serial: serial)
                }
            default:
                let serial = random.next(below: nextSerial + 2)
                #expect(table.contains(serial: serial) == (model.bySerial[serial] != nil), "\(context)")
                #expect(table.serial(forCallID: callID) == model.byCallID[callID], "\(context)")
            }
            #expect(table.count == model.bySerial.count && table.isEmpty == model.bySerial.isEmpty, "\(context)")
            if step % 1_000 == 999 {
                // Everything the model holds is found both ways.
                for (serial, entry) in model.bySerial {
                    #expect(table.contains(serial: serial) && table.serial(forCallID: entry.callID) == serial, "\(context)")
                }
            }
        }
        table.removeAll()
        #expect(table.isEmpty && table.serial(forCallID: 0) == nil && !table.contains(serial: 1))
    }

    @Test("call id 0 is an id like any other; serial 0 is never in flight")
    func zeroes() {
        var table = InflightCalls<String>()
        #expect(table.remove(serial: 0) == nil && table.remove(callID: 0) == nil)
        table.insert(serial: 1, callID: 0, "first")
        #expect(table.serial(forCallID: 0) == 1 && !table.contains(serial: 0))
        #expect(table.remove(callID: 0)?.call == "first")
        #expect(table.isEmpty)
    }
}
