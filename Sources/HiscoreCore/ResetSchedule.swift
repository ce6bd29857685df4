/// When a board's season ends (all times UTC): at `minuteOfDay` every day, every week on
/// `weekday` (1 = Monday … 7 = Sunday), or every month on `dayOfMonth` (1…28, so every month has
/// it). At a boundary the live standings become a read-only archived period and the board starts
/// empty; `keepPeriods` archived periods are kept.
///
/// Pure calendar arithmetic on microseconds since the Unix epoch (no time zones, no Foundation):
/// days since the epoch convert to civil dates with Howard Hinnant's algorithms.
public struct ResetSchedule: Sendable, Equatable {
    public enum Period: UInt8, Sendable {
        case daily = 1
        case weekly = 2
        case monthly = 3
    }

    public static let defaultKeepPeriods = 10
    public static let maxKeepPeriods = 100

    public var period: Period
    public var minuteOfDay: Int
    public var weekday: Int
    public var dayOfMonth: Int
    public var keepPeriods: Int

    /// `weekday` counts only for weekly schedules and `dayOfMonth` only for monthly ones: the
    /// other is set to 1, so that two schedules that reset alike are equal (a board's idempotent
    /// creation compares configs) whatever a client sent in the unused field, and the catalog's
    /// one byte for each never changes a config across a restart.
    public init(period: Period, minuteOfDay: Int = 0, weekday: Int = 1, dayOfMonth: Int = 1, keepPeriods: Int = defaultKeepPeriods) {
        self.period = period
        self.minuteOfDay = minuteOfDay
        self.weekday = period == .weekly ? weekday : 1
        self.dayOfMonth = period == .monthly ? dayOfMonth : 1
        self.keepPeriods = keepPeriods
    }

    public func validate() throws(ValidationError) {
        guard (0..<1440).contains(minuteOfDay) else {
            throw ValidationError(field: "reset.minute_of_day", reason: "\(minuteOfDay) is not in 0...1439")
        }
        if period == .weekly, !(1...7).contains(weekday) {
            throw ValidationError(field: "reset.weekday", reason: "\(weekday) is not in 1 (Monday)...7 (Sunday)")
        }
        if period == .monthly, !(1...28).contains(dayOfMonth) {
            throw ValidationError(field: "reset.day_of_month", reason: "\(dayOfMonth) is not in 1...28")
        }
        guard (1...Self.maxKeepPeriods).contains(keepPeriods) else {
            throw ValidationError(field: "reset.keep_periods", reason: "\(keepPeriods) is not in 1...\(Self.maxKeepPeriods)")
        }
    }

    static let microsPerDay: Int64 = 86_400_000_000
    /// Instants are taken within years 1 ... 9999 (clamped): the day arithmetic below stays far
    /// from Int64's bounds, so no input can overflow it.
    static let supportedMicros: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    static func clamp(_ instant: Int64) -> Int64 {
        min(max(instant, supportedMicros.lowerBound), supportedMicros.upperBound)
    }

    /// The latest boundary at or before `micros` (clamped to years 1 ... 9999).
    public func lastBoundary(atOrBefore instant: Int64) -> Int64 {
        let micros = Self.clamp(instant)
        let day = Self.floorDiv(micros, Self.microsPerDay)
        let offset = Int64(minuteOfDay) * 60_000_000
        switch period {
        case .daily:
            let today = day * Self.microsPerDay + offset
            return today <= micros ? today : today - Self.microsPerDay
        case .weekly:
            var candidateDay = day
            while true {
                let boundary = candidateDay * Self.microsPerDay + offset
                if Self.weekday(ofDay: candidateDay) == weekday && boundary <= micros { return boundary }
                candidateDay -= 1
            }
        case .monthly:
            var (year, month, _) = Self.civil(fromDays: day)
            while true {
                let boundary = Self.days(year: year, month: month, day: Int64(dayOfMonth)) * Self.microsPerDay + offset
                if boundary <= micros { return boundary }
                month -= 1
                if month == 0 {
                    month = 12
                    year -= 1
                }
            }
        }
    }

    /// The first boundary strictly after `micros` (clamped to years 1 ... 9999).
    public func nextBoundary(after instant: Int64) -> Int64 {
        let last = lastBoundary(atOrBefore: Self.clamp(instant))
        switch period {
        case .daily: return last + Self.microsPerDay
        case .weekly: return last + 7 * Self.microsPerDay
        case .monthly:
            var (year, month, _) = Self.civil(fromDays: Self.floorDiv(last, Self.microsPerDay))
            month += 1
            if month == 13 {
                month = 1
                year += 1
            }
            return Self.days(year: year, month: month, day: Int64(dayOfMonth)) * Self.microsPerDay
                + Int64(minuteOfDay) * 60_000_000
        }
    }

    /// ISO weekday (1 = Monday) of a day since 1970-01-01 (a Thursday).
    static func weekday(ofDay day: Int64) -> Int {
        Int(floorMod(day + 3, 7)) + 1
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a + 1) / b - 1 }  // no -a: Int64.min
    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

    /// Days since 1970-01-01 of a civil date (proleptic Gregorian).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yearOfEra = y - era * 400
        let monthIndex = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date of a day since 1970-01-01.
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
