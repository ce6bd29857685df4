import Testing
@testable import HiscoreServer
import HiscoreTestSupport

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

    /// `n * fibonacciInverse` hashes to `n` before the table keeps its top bits: small `n` all
    /// land in bucket 0 of any table (the inverse of 0x9E3779B97F4A7C15 modulo 2^64).
    static let fibonacciInverse: UInt64 = {
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var inverse = multiplier  // Newton's iteration doubles the correct low bits each step
        for _ in 0..<6 { inverse = inverse &* (2 &- multiplier &* inverse) }
        return inverse
    }()

    /// Call ids drawn from `idSpace` (small spaces reuse ids as soon as they are free, as clients
    /// do); `colliding` turns every id and serial into one that hashes to bucket 0 of an unseeded
    /// table: one long probe run, removals in its middle.
    @Test("matches a pair of dictionaries over random calls", arguments: [(8, false), (300, false), (1 << 40, false), (64, true), (1 << 20, true)])
    func matchesDictionaries(idSpace: UInt64, colliding: Bool) {
        #expect(0x9E37_79B9_7F4A_7C15 &* Self.fibonacciInverse == 1)
        let seed = DifferentialServerTests.seed()
        var random = SplitMix64(seed: seed)
        // Seed 0: the colliding ids collide (the server seeds each connection's tables at random).
        var table = InflightCalls<Int>(seed: 0)
        var model = Model()
        var serialCounter: UInt64 = 1
        var nextSerial: UInt64 { colliding ? serialCounter &* Self.fibonacciInverse : serialCounter }
        for step in 0..<20_000 {
            let context = "seed \(seed), step \(step)"
            let drawn = random.next(below: idSpace)
            let callID = colliding ? drawn &* Self.fibonacciInverse : drawn
            switch random.next(below: 10) {
            case 0..<5:
                // Admit, unless the id is in flight (the handler refuses those) or 256 calls are.
                guard model.byCallID[callID] == nil, model.bySerial.count < 256 else {
                    #expect(table.serial(forCallID: callID) == model.byCallID[callID], "\(context)")
                    continue
                }
                let serial = nextSerial
                serialCounter += 1
                let call = Int(truncatingIfNeeded: random.next())
                table.insert(serial: serial, callID: callID, call)
                model.bySerial[serial] = (callID, call)
                model.byCallID[callID] = serial
                model.live.append(serial)
            case 5..<8:
                // Answer a call by serial: a live one mostly, sometimes one already gone.
                let pick = random.next(below: UInt64(model.live.count) + 1)
                let serial = pick < model.live.count ? model.live[Int(pick)] : random.next(below: serialCounter + 1)
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
                let serial = random.next(below: 2) == 0 ? random.next(below: serialCounter + 2) : nextSerial
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

    @Test("0 is a key like any other")
    func zeroes() {
        var table = InflightCalls<String>()
        #expect(table.remove(serial: 0) == nil && table.remove(callID: 0) == nil)
        table.insert(serial: 1, callID: 0, "first")
        table.insert(serial: 0, callID: 7, "zero")
        #expect(table.serial(forCallID: 0) == 1 && table.serial(forCallID: 7) == 0 && table.contains(serial: 0))
        #expect(table.remove(callID: 0)?.call == "first")
        #expect(table.remove(serial: 0)?.callID == 7)
        #expect(table.isEmpty)
    }
}
