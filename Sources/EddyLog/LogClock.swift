#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The clock seam of the embedded log: segment rolling by age, time retention and tombstone
/// expiry read the time through it, so tests can jump in time.
protocol LogClock: Sendable {
    /// Wall-clock milliseconds since the Unix epoch.
    var nowMilliseconds: Int64 { get }
}

/// The system's wall clock (`clock_gettime(CLOCK_REALTIME)`).
struct SystemLogClock: LogClock {
    var nowMilliseconds: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// A clock that moves only when told to. Thread-safe.
final class ManualLogClock: LogClock, @unchecked Sendable {
    // @unchecked: `time` is only touched under `lock`.
    private let lock = StorageMutex()
    private var time: Int64

    init(nowMilliseconds: Int64 = 1_700_000_000_000) { time = nowMilliseconds }

    var nowMilliseconds: Int64 { lock.withLock { time } }

    /// Moves the clock by `milliseconds` (may be negative, to test clocks that jump back).
    func advance(by milliseconds: Int64) { lock.withLock { time += milliseconds } }
    /// Sets the clock.
    func set(_ milliseconds: Int64) { lock.withLock { time = milliseconds } }
}
