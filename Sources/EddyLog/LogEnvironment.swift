#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the embedded log reads from the outside world: files and time. Tests hand in an
/// in-memory file system that injects faults and a manual clock; production uses ``real``.
struct LogEnvironment: Sendable {
    var fileSystem: any FileSystem
    var clock: any LogClock

    init(fileSystem: any FileSystem, clock: any LogClock) {
        self.fileSystem = fileSystem
        self.clock = clock
    }

    /// POSIX files and the system clock.
    static var real: LogEnvironment { LogEnvironment(fileSystem: POSIXFileSystem(), clock: SystemLogClock()) }

    /// A fresh, empty in-memory file system and the system clock: the log's in-memory mode.
    static func inMemory() -> LogEnvironment {
        LogEnvironment(fileSystem: InMemoryFileSystem(), clock: SystemLogClock())
    }
}

/// A plain mutual-exclusion lock (`pthread_mutex_t`), for the storage engine's shared state.
final class StorageMutex: @unchecked Sendable {
    // @unchecked: the mutex is the synchronisation primitive; it lives as long as the object.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` holding the lock.
    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A readers-writer lock (`pthread_rwlock_t`): many readers of a partition at once, one writer.
final class StorageReadWriteLock: @unchecked Sendable {
    // @unchecked: the rwlock is the synchronisation primitive; it lives as long as the object.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        #if canImport(Glibc)
        // glibc prefers readers by default: a steady stream of fetches would starve appends.
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        #else
        pthread_rwlock_init(lock, nil)
        #endif
    }
    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always)
    func withReadLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    @inline(__always)
    func withWriteLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
