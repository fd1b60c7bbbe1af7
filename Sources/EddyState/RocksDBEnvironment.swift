import CRocksDB
import EddyCore
import Foundation

/// What one worker's RocksDB stores share: the configuration, one block cache, and one budget
/// for memtable (write buffer) memory. Create one per worker and hand it to every
/// ``TaskStateDirectory``. Thread-safe: tasks on any thread open and close stores through it.
///
/// **How write-buffer memory is bounded.** RocksDB's `WriteBufferManager` is not reachable
/// through the 7.8 C API (`rocksdb/c.h` has no `rocksdb_write_buffer_manager_*`), so the worker-
/// wide bound is kept by this object instead: it knows every open store's column family and, each
/// time one opens or closes, sets every column family's `write_buffer_size` (a mutable option,
/// `rocksdb_set_options_cf`) to `writeBufferBytes / (openStores × maximumWriteBuffersPerStore)`
/// rounded down to a power of two, but not below `minimumWriteBufferBytesPerStore`. The
/// rounding matters: every `rocksdb_set_options_cf` rewrites and fsyncs the database's OPTIONS
/// file, so resizing every family on every open made a worker start quadratic in its stores;
/// with the rounding a family is touched only when its size really changes (a few times while
/// a worker opens its stores). Memtables in use thus total at most
/// ``RocksDBConfiguration/writeBufferBytes`` (or the documented minimum when there are very many
/// stores). A shrink takes effect at each column family's next memtable switch; as a further
/// guard every database also gets `db_write_buffer_size = writeBufferBytes`.
public final class RocksDBEnvironment: @unchecked Sendable {
    // @unchecked Sendable: the cache pointer is immutable after init and RocksDB's cache is
    // thread-safe. The registry is touched only under `lock`. Registrations hold other tasks'
    // (thread-confined) handles, but only to call `rocksdb_set_options_cf`, which RocksDB makes
    // thread-safe; a task unregisters a column family (taking the lock, so waiting out any
    // resize in progress) before it drops it or closes its database, so a resize never uses a
    // closed handle.

    /// The settings every database of this worker opens with.
    public let configuration: RocksDBConfiguration
    /// Receives Eddy's state log lines (a missing or corrupt directory being rebuilt, restores).
    public let log: @Sendable (String) -> Void

    let cache: OpaquePointer
    private let lock = NSLock()
    private var registered: [ObjectIdentifier: Registration] = [:]

    /// A store's column family, known to the environment while the store is open.
    final class Registration {
        let handle: RocksDBHandle
        let family: OpaquePointer
        /// The `write_buffer_size` last set on the family (nil: not set by the environment yet).
        var appliedWriteBufferBytes: Int?
        init(handle: RocksDBHandle, family: OpaquePointer) {
            self.handle = handle
            self.family = family
        }
    }

    /// Creates the worker's shared block cache (`rocksdb_cache_create_lru`). Throws
    /// ``EddyError/Code/invalidArgument`` for an invalid configuration.
    ///
    /// - Parameter log: where state log lines go; standard error by default.
    public init(configuration: RocksDBConfiguration = RocksDBConfiguration(),
                log: @escaping @Sendable (String) -> Void = RocksDBEnvironment.standardErrorLog) throws {
        try configuration.validate()
        self.configuration = configuration
        self.log = log
        cache = rocksdb_cache_create_lru(configuration.blockCacheBytes)
    }

    /// `rocksdb_cache_destroy` (databases still open keep their own reference to the cache).
    deinit { rocksdb_cache_destroy(cache) }

    /// Writes `line` to standard error, prefixed with `eddy-state:`.
    public static let standardErrorLog: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data("eddy-state: \(line)\n".utf8))
    }

    /// Bytes the shared block cache holds now (`rocksdb_cache_get_usage`).
    public var blockCacheUsageBytes: Int { rocksdb_cache_get_usage(cache) }

    /// How many times a column family's `write_buffer_size` has been set (each rewrites the
    /// database's OPTIONS file with an fsync), for diagnostics and tests.
    public var writeBufferResizeCount: Int { lock.withLock { resizes } }
    private var resizes = 0

    /// Number of store column families currently sharing the write-buffer budget.
    public var openStoreCount: Int { lock.withLock { registered.count } }

    /// The `write_buffer_size` each column family gets with `stores` stores open.
    public func writeBufferBytesPerStore(openStores stores: Int) -> Int {
        let share = configuration.writeBufferBytes / max(1, stores * configuration.maximumWriteBuffersPerStore)
        return max(configuration.minimumWriteBufferBytesPerStore, share)
    }

    /// The size actually applied with `stores` open: ``writeBufferBytesPerStore(openStores:)``
    /// rounded down to a power of two (never below the configured minimum), so that the budget
    /// holds and sizes change only at a few store counts.
    public func appliedWriteBufferBytes(openStores stores: Int) -> Int {
        let share = writeBufferBytesPerStore(openStores: stores)
        let rounded = 1 << (Int.bitWidth - 1 - share.leadingZeroBitCount)
        return max(configuration.minimumWriteBufferBytesPerStore, rounded)
    }

    /// Options for a new database, with the write-buffer size the next store would get.
    func makeOptions() throws -> RocksDBOptions {
        let size = lock.withLock { appliedWriteBufferBytes(openStores: registered.count + 1) }
        return try RocksDBOptions(configuration: configuration, cache: cache, writeBufferBytesPerColumnFamily: size)
    }

    /// Adds a store's column family to the budget and resizes every registered family.
    func register(_ registration: Registration) {
        lock.withLock {
            registered[ObjectIdentifier(registration)] = registration
            resizeLocked()
        }
    }

    /// Removes a store's column family (before its database closes) and resizes the others.
    func unregister(_ registration: Registration) {
        lock.withLock {
            registered[ObjectIdentifier(registration)] = nil
            resizeLocked()
        }
    }

    private func resizeLocked() {
        let size = appliedWriteBufferBytes(openStores: registered.count)
        for registration in registered.values
        where registration.handle.isOpen && registration.appliedWriteBufferBytes != size {
            do {
                try registration.handle.setOptions(registration.family, ["write_buffer_size": String(size)])
                registration.appliedWriteBufferBytes = size
                resizes += 1
            } catch {
                log("could not resize the write buffer of a store in \(registration.handle.path): \(error)")
            }
        }
    }
}
