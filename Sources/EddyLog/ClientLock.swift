#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with one condition variable, for the embedded log's shared objects
/// (the log, its coordinators, the consumers' wake-up signal).
///
/// Why not `Synchronization.Mutex`: consumers need a condition variable to block in `poll`
/// until data arrives, and the package still targets macOS 14. Why not actors: the hot path
/// (append, poll) stays on plain threads (DESIGN.md, "Streams").
///
/// The condition waits use `CLOCK_MONOTONIC` where the platform allows it, so a jump of the
/// wall clock neither shortens nor stretches a `poll` timeout.
final class ClientLock: @unchecked Sendable {
    // Heap-allocated: pthread objects must not move, and Swift may move stored properties.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        #if os(Linux)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #else
        pthread_cond_init(condition, nil)
        #endif
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every thread waiting on the condition. Call with or without the lock held.
    func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits on the condition for at most `milliseconds`; the lock must be held. Returns
    /// early on a broadcast or a spurious wake-up: callers re-check their predicate.
    func wait(milliseconds: Int) {
        guard milliseconds > 0 else { return }
        #if os(Linux)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        var deadline = now
        deadline.tv_sec += milliseconds / 1000
        deadline.tv_nsec += (milliseconds % 1000) * 1_000_000
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        _ = pthread_cond_timedwait(condition, mutex, &deadline)
        #else
        var relative = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        _ = pthread_cond_timedwait_relative_np(condition, mutex, &relative)
        #endif
    }

    /// Milliseconds of a monotonic clock (for timeouts; unrelated to record timestamps).
    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
