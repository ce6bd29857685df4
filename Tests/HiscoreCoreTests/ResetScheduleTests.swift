import HiscoreCore
import Testing

/// Season boundaries, checked against dates worked out by hand (all UTC).
@Suite("Reset schedules")
struct ResetScheduleTests {
    /// Microseconds since the epoch of a UTC date and time.
    static func micros(_ year: Int64, _ month: Int64, _ day: Int64, _ hour: Int64 = 0, _ minute: Int64 = 0) -> Int64 {
        // Days from 1970-01-01 by counting (independent of the implementation under test).
        var days: Int64 = 0
        func leap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
        for y in 1970..<year { days += leap(y) ? 366 : 365 }
        let lengths: [Int64] = [31, leap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for m in 0..<Int(month - 1) { days += lengths[m] }
        days += day - 1
        return ((days * 24 + hour) * 60 + minute) * 60_000_000
    }

    @Test("the field a period does not use does not tell two schedules apart")
    func unusedFieldsAreIgnored() {
        #expect(ResetSchedule(period: .daily, weekday: 300, dayOfMonth: 99) == ResetSchedule(period: .daily))
        #expect(ResetSchedule(period: .daily, weekday: 0, dayOfMonth: 0) == ResetSchedule(period: .daily))
        #expect(ResetSchedule(period: .weekly, weekday: 3, dayOfMonth: 300) == ResetSchedule(period: .weekly, weekday: 3))
        #expect(ResetSchedule(period: .monthly, weekday: 300, dayOfMonth: 5) == ResetSchedule(period: .monthly, dayOfMonth: 5))
        #expect(ResetSchedule(period: .weekly, weekday: 3) != ResetSchedule(period: .weekly, weekday: 4))
    }

    @Test("daily at 02:30")
    func daily() {
        let schedule = ResetSchedule(period: .daily, minuteOfDay: 150)
        #expect(schedule.lastBoundary(atOrBefore: Self.micros(2026, 11, 29, 2, 29)) == Self.micros(2026, 11, 28, 2, 30))
        #expect(schedule.lastBoundary(atOrBefore: Self.micros(2026, 11, 29, 2, 30)) == Self.micros(2026, 11, 29, 2, 30))
        #expect(schedule.nextBoundary(after: Self.micros(2026, 12, 31, 23, 0)) == Self.micros(2027, 1, 1, 2, 30))
    }

    @Test("weekly on Monday 00:00 (2026-11-30 is a Monday)")
    func weekly() {
        let schedule = ResetSchedule(period: .weekly, minuteOfDay: 0, weekday: 1)
        #expect(schedule.lastBoundary(atOrBefore: Self.micros(2026, 11, 29, 23, 59)) == Self.micros(2026, 11, 23))
        #expect(schedule.nextBoundary(after: Self.micros(2026, 11, 29, 23, 59)) == Self.micros(2026, 11, 30))
        #expect(schedule.nextBoundary(after: Self.micros(2026, 11, 30)) == Self.micros(2026, 12, 7))
        let sunday = ResetSchedule(period: .weekly, minuteOfDay: 60, weekday: 7)
        #expect(sunday.nextBoundary(after: Self.micros(2026, 11, 29, 0, 30)) == Self.micros(2026, 11, 29, 1, 0))
    }

    @Test("monthly on the 28th, across year ends and leap years")
    func monthly() {
        let schedule = ResetSchedule(period: .monthly, minuteOfDay: 0, dayOfMonth: 28)
        #expect(schedule.lastBoundary(atOrBefore: Self.micros(2026, 1, 10)) == Self.micros(2025, 12, 28))
        #expect(schedule.nextBoundary(after: Self.micros(2026, 12, 28)) == Self.micros(2027, 1, 28))
        #expect(schedule.nextBoundary(after: Self.micros(2028, 2, 1)) == Self.micros(2028, 2, 28))
        let first = ResetSchedule(period: .monthly, minuteOfDay: 0, dayOfMonth: 1)
        #expect(first.nextBoundary(after: Self.micros(2024, 2, 29, 12)) == Self.micros(2024, 3, 1))
    }

    @Test("invalid schedules are refused with the field named")
    func validation() {
        #expect(throws: ValidationError.self) { try ResetSchedule(period: .daily, minuteOfDay: 1440).validate() }
        #expect(throws: ValidationError.self) { try ResetSchedule(period: .weekly, weekday: 8).validate() }
        #expect(throws: ValidationError.self) { try ResetSchedule(period: .monthly, dayOfMonth: 31).validate() }
        #expect(throws: ValidationError.self) { try ResetSchedule(period: .daily, keepPeriods: 0).validate() }
        #expect(throws: Never.self) { try ResetSchedule(period: .monthly, dayOfMonth: 28, keepPeriods: 100).validate() }
    }
}
