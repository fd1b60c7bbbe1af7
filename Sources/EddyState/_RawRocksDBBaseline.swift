import CRocksDB
import EddyCore

/// The raw RocksDB C API doing the same work as Eddy's stores, for `eddy bench state` to compare
/// against. No API promise (the name starts with `_`): it exists because only EddyState may
/// import CRocksDB.
///
/// It opens a database with exactly the options Eddy's stores get from `environment` (shared
/// cache, compression, write-buffer size, bloom filter) and one column family, and then calls
/// `rocksdb_writebatch_put_cf` + `rocksdb_write`, `rocksdb_get_pinned_cf`, and iterators
/// directly, with no write buffer, no copies into Swift arrays and no checks.
public final class _RawRocksDBBaseline {
    private let handle: RocksDBHandle
    private let family: OpaquePointer
    private let readOptions: OpaquePointer
    private let batch = RocksDBWriteBatch()

    /// Opens (creating) a database at `path` with a column family `kv`.
    public init(path: String, environment: RocksDBEnvironment) throws {
        handle = try RocksDBHandle(path: path, options: try environment.makeOptions(),
                                   syncWrites: environment.configuration.syncWrites)
        family = try handle.family("kv")
        readOptions = rocksdb_readoptions_create()
    }

    deinit {
        rocksdb_readoptions_destroy(readOptions)
        handle.close()
    }

    /// One `WriteBatch` with a put per pair, written with the write-ahead log (like a commit) or
    /// without it (like a restore).
    public func write(keys: ArraySlice<[UInt8]>, values: ArraySlice<[UInt8]>, disableWAL: Bool = false) throws {
        batch.clear()
        for (key, value) in zip(keys, values) { batch.put(family, key, value) }
        try handle.write(batch, disableWAL: disableWAL)
    }

    /// `rocksdb_get_pinned_cf`; returns the value's length (-1 when absent) without copying it.
    public func get(_ key: [UInt8]) throws -> Int {
        var error: UnsafeMutablePointer<CChar>?
        guard let database = handle.rawDatabase else { throw EddyError(.closed, "closed") }
        let slice = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { k in
                rocksdb_get_pinned_cf(database, readOptions, family, k.baseAddress, k.count, &error)
            }
        }
        try RocksDBError.check(error, "get")
        guard let slice else { return -1 }
        var length = 0
        _ = rocksdb_pinnableslice_value(slice, &length)
        rocksdb_pinnableslice_destroy(slice)
        return length
    }

    /// An iterator from `from`, reading up to `count` entries; returns the bytes seen (keys plus
    /// values), touching but not copying them.
    public func scan(from: [UInt8], count: Int) throws -> Int {
        var seen = 0
        var entries = 0
        try handle.scan(family, from: from, to: nil, reverse: false) { key, value in
            seen += key.count + value.count + Int(key[0])
            entries += 1
            return entries < count
        }
        return seen
    }

    /// `rocksdb_flush_cf`.
    public func flush() throws { try handle.flush(family) }

    /// Flushes the memtable and waits until no flush or compaction runs or is pending, so that
    /// reads are measured on a settled database, not one that background work is reshaping
    /// (and competing with for the CPU). Do the same to the store compared against, with
    /// ``settle(store:in:)``.
    public func settle() throws { try handle.waitForBackgroundWork(flushing: family) }

    /// ``settle()`` for store `store` of an Eddy task directory (its column family and database).
    public static func settle(store: String, in directory: TaskStateDirectory) throws {
        try directory.handle.waitForBackgroundWork(flushing: try directory.handle.family(store))
    }

    /// `rocksdb_close`, which waits for background flushes and compactions. Idempotent.
    public func close() { handle.close() }
}

extension RocksDBHandle {
    /// The `rocksdb_t*`, for the baseline only.
    var rawDatabase: OpaquePointer? { isOpen ? try? rawDB() : nil }
}
