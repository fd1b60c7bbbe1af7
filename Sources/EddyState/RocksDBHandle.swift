import CRocksDB
import EddyCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The C door to RocksDB: small typed values over `rocksdb/c.h`. Nothing here is public; every
/// C pointer stays inside EddyState. Each method names the C function it wraps.
///
/// Threading: a handle is used by the thread that owns its task (stores are thread-confined);
/// RocksDB itself is thread-safe, which is what lets ``RocksDBEnvironment`` resize write
/// buffers of other tasks' column families from another thread.
enum RocksDBError {
    /// Turns a RocksDB error string (`char* errptr`, freed here with `rocksdb_free`) into an
    /// ``EddyError``: `Corruption:` becomes `.corrupt`, lock failures `.locked`, the rest `.io`.
    static func check(_ error: UnsafeMutablePointer<CChar>?, _ what: @autoclosure () -> String) throws {
        guard let error else { return }
        let text = String(cString: error)
        rocksdb_free(error)
        if text.hasPrefix("Corruption") {
            throw EddyError(.corrupt, "\(what()): \(text)")
        }
        if text.contains("lock") && text.contains("LOCK") {
            throw EddyError(.locked, "\(what()): \(text)")
        }
        throw EddyError(.io, "\(what()): \(text)")
    }
}

/// A RocksDB write batch (`rocksdb_writebatch_t`), applied atomically by ``RocksDBHandle/write(_:disableWAL:)``.
final class RocksDBWriteBatch {
    let pointer: OpaquePointer

    /// `rocksdb_writebatch_create`.
    init() { pointer = rocksdb_writebatch_create() }
    /// `rocksdb_writebatch_destroy`.
    deinit { rocksdb_writebatch_destroy(pointer) }

    /// `rocksdb_writebatch_put_cf`.
    func put(_ family: OpaquePointer, _ key: [UInt8], _ value: [UInt8]) {
        key.withUnsafeBufferPointer { k in
            value.withUnsafeBufferPointer { v in
                k.withMemoryRebound(to: CChar.self) { k in
                    v.withMemoryRebound(to: CChar.self) { v in
                        rocksdb_writebatch_put_cf(pointer, family, k.baseAddress, k.count, v.baseAddress, v.count)
                    }
                }
            }
        }
    }

    /// `rocksdb_writebatch_delete_cf`.
    func delete(_ family: OpaquePointer, _ key: [UInt8]) {
        key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { k in
                rocksdb_writebatch_delete_cf(pointer, family, k.baseAddress, k.count)
            }
        }
    }

    /// `rocksdb_writebatch_delete_range_cf`: one range tombstone for every key in [from, to).
    func deleteRange(_ family: OpaquePointer, from: [UInt8], to: [UInt8]) {
        from.withUnsafeBufferPointer { f in
            to.withUnsafeBufferPointer { t in
                f.withMemoryRebound(to: CChar.self) { f in
                    t.withMemoryRebound(to: CChar.self) { t in
                        rocksdb_writebatch_delete_range_cf(pointer, family, f.baseAddress, f.count, t.baseAddress, t.count)
                    }
                }
            }
        }
    }

    /// `rocksdb_writebatch_count`.
    var count: Int { Int(rocksdb_writebatch_count(pointer)) }

    /// `rocksdb_writebatch_clear`.
    func clear() { rocksdb_writebatch_clear(pointer) }
}

/// Options for opening databases and creating column families (`rocksdb_options_t`), built
/// from a ``RocksDBConfiguration`` and the worker's shared block cache.
final class RocksDBOptions {
    let pointer: OpaquePointer

    /// Builds options with `rocksdb_options_create`, `rocksdb_block_based_options_*` (shared
    /// cache from `rocksdb_cache_create_lru`, bloom filter) and applies the configuration's
    /// escape-hatch string with `rocksdb_get_options_from_string`.
    init(configuration: RocksDBConfiguration, cache: OpaquePointer, writeBufferBytesPerColumnFamily: Int) throws {
        let base = rocksdb_options_create()!
        rocksdb_options_set_create_if_missing(base, 1)
        rocksdb_options_set_create_missing_column_families(base, 1)
        rocksdb_options_increase_parallelism(base, Int32(max(1, configuration.backgroundThreads)))
        rocksdb_options_set_max_background_jobs(base, Int32(max(2, configuration.backgroundThreads)))
        rocksdb_options_set_compression(base, Int32(configuration.compression.rocksDBValue))
        rocksdb_options_set_bottommost_compression(base, Int32(configuration.bottommostCompression.rocksDBValue))
        rocksdb_options_set_write_buffer_size(base, writeBufferBytesPerColumnFamily)
        rocksdb_options_set_max_write_buffer_number(base, Int32(configuration.maximumWriteBuffersPerStore))
        // A per-database ceiling on all memtables; the worker-wide bound comes from the per-column-
        // family sizes that RocksDBEnvironment keeps adjusted (see its documentation).
        rocksdb_options_set_db_write_buffer_size(base, configuration.writeBufferBytes)
        rocksdb_options_set_max_open_files(base, Int32(configuration.maximumOpenFiles))
        rocksdb_options_set_keep_log_file_num(base, 2)
        rocksdb_options_set_info_log_level(base, 2)  // WARN: RocksDB's LOG stays small
        rocksdb_options_set_paranoid_checks(base, 1)

        let table = rocksdb_block_based_options_create()!
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_block_based_options_set_block_size(table, configuration.blockSizeBytes)
        // Index and filter blocks are charged to the shared cache (bounded memory), kept at high
        // priority, and partitioned so that a miss reloads one small partition, not a whole
        // file's filter: without this, random reads on a cache smaller than the data thrash
        // multi-megabyte filter blocks in and out of the cache (Kafka Streams' bounded-memory recipe).
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1)
        rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(table, 1)
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table, 1)
        rocksdb_block_based_options_set_pin_top_level_index_and_filter(table, 1)
        rocksdb_block_based_options_set_index_type(table, Int32(rocksdb_block_based_table_index_type_two_level_index_search))
        rocksdb_block_based_options_set_partition_filters(table, 1)
        rocksdb_block_based_options_set_metadata_block_size(table, 4_096)
        if configuration.bloomFilterBitsPerKey > 0 {
            rocksdb_block_based_options_set_filter_policy(
                table, rocksdb_filterpolicy_create_bloom_full(configuration.bloomFilterBitsPerKey))
        }
        rocksdb_block_based_options_set_format_version(table, 5)
        rocksdb_options_set_block_based_table_factory(base, table)
        rocksdb_block_based_options_destroy(table)

        if configuration.options.isEmpty {
            pointer = base
            return
        }
        let custom = rocksdb_options_create()!
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_get_options_from_string(base, configuration.options, custom, &error)
        rocksdb_options_destroy(base)
        do {
            try RocksDBError.check(error, "RocksDBConfiguration.options '\(configuration.options)' is not a valid RocksDB options string")
        } catch var failure as EddyError {
            rocksdb_options_destroy(custom)
            failure.code = .invalidArgument
            throw failure
        }
        pointer = custom
    }

    /// `rocksdb_options_destroy`.
    deinit { rocksdb_options_destroy(pointer) }
}

/// An open RocksDB database (`rocksdb_t`) with its column families, one per store plus
/// `default`, which holds the stores' metadata (changelog checkpoints, stream times).
final class RocksDBHandle {
    let path: String
    private var database: OpaquePointer?
    private var families: [String: OpaquePointer] = [:]
    private let options: RocksDBOptions
    private let writeOptions: OpaquePointer
    private let restoreWriteOptions: OpaquePointer
    private let readOptions: OpaquePointer

    /// Opens (creating if missing) the database at `path` with every column family it already
    /// has: `rocksdb_list_column_families` then `rocksdb_open_column_families`.
    init(path: String, options: RocksDBOptions, syncWrites: Bool) throws {
        self.path = path
        self.options = options
        var names = ["default"]
        var count = 0
        var error: UnsafeMutablePointer<CChar>?
        if let list = rocksdb_list_column_families(options.pointer, path, &count, &error) {
            if count > 0 { names = (0..<count).map { String(cString: list[$0]!) } }
            rocksdb_list_column_families_destroy(list, count)
        }
        // A database that does not exist yet has no column families to list: open with `default`.
        if let error { rocksdb_free(error) }
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        let optionList = [OpaquePointer?](repeating: options.pointer, count: names.count)
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        error = nil
        let opened: OpaquePointer? = cNames.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { namePointers in
            optionList.withUnsafeBufferPointer { optionPointers in
                rocksdb_open_column_families(options.pointer, path, Int32(names.count), namePointers.baseAddress,
                                             optionPointers.baseAddress, &handles, &error)
            }
        }
        try RocksDBError.check(error, "opening RocksDB at \(path)")
        guard let opened else { throw EddyError(.io, "opening RocksDB at \(path) returned no database") }
        database = opened
        for (name, handle) in zip(names, handles) { families[name] = handle! }
        writeOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeOptions, syncWrites ? 1 : 0)
        restoreWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_disable_WAL(restoreWriteOptions, 1)
        readOptions = rocksdb_readoptions_create()
    }

    deinit {
        close()
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(restoreWriteOptions)
        rocksdb_readoptions_destroy(readOptions)
    }

    var isOpen: Bool { database != nil }

    func rawDB() throws -> OpaquePointer { try db() }

    private func db() throws -> OpaquePointer {
        guard let database else { throw EddyError(.closed, "RocksDB at \(path) is closed") }
        return database
    }

    /// The metadata column family (`default`).
    var metadataFamily: OpaquePointer { families["default"]! }

    /// The column family `name`, created with `rocksdb_create_column_family` if missing.
    func family(_ name: String) throws -> OpaquePointer {
        if let handle = families[name] { return handle }
        var error: UnsafeMutablePointer<CChar>?
        let handle = rocksdb_create_column_family(try db(), options.pointer, name, &error)
        try RocksDBError.check(error, "creating column family \(name) in \(path)")
        families[name] = handle!
        return handle!
    }

    /// Drops and recreates column family `name` (`rocksdb_drop_column_family`,
    /// `rocksdb_create_column_family`): every key gone in one step.
    func recreateFamily(_ name: String) throws -> OpaquePointer {
        if let handle = families.removeValue(forKey: name) {
            var error: UnsafeMutablePointer<CChar>?
            rocksdb_drop_column_family(try db(), handle, &error)
            rocksdb_column_family_handle_destroy(handle)
            try RocksDBError.check(error, "dropping column family \(name) in \(path)")
        }
        return try family(name)
    }

    /// `rocksdb_get_pinned_cf`, copied into an array.
    func get(_ family: OpaquePointer, _ key: [UInt8]) throws -> [UInt8]? {
        var error: UnsafeMutablePointer<CChar>?
        let database = try db()
        let slice = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { k in
                rocksdb_get_pinned_cf(database, readOptions, family, k.baseAddress, k.count, &error)
            }
        }
        try RocksDBError.check(error, "reading from RocksDB at \(path)")
        guard let slice else { return nil }
        defer { rocksdb_pinnableslice_destroy(slice) }
        var length = 0
        guard let value = rocksdb_pinnableslice_value(slice, &length) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
    }

    /// `rocksdb_write`; with `disableWAL` the batch skips the write-ahead log (restoration only:
    /// the caller flushes before recording progress).
    func write(_ batch: RocksDBWriteBatch, disableWAL: Bool = false) throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(try db(), disableWAL ? restoreWriteOptions : writeOptions, batch.pointer, &error)
        try RocksDBError.check(error, "writing to RocksDB at \(path)")
    }

    /// Visits keys in [from, to) (`nil`: unbounded) ascending or descending until `body` returns
    /// false. The iterator (`rocksdb_create_iterator_cf`, `rocksdb_iter_seek` /
    /// `rocksdb_iter_seek_for_prev`, `rocksdb_iter_next` / `rocksdb_iter_prev`) is destroyed
    /// before this returns, also when `body` throws: no iterator outlives the call.
    func scan(_ family: OpaquePointer, from: [UInt8]?, to: [UInt8]?, reverse: Bool,
              _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        if let from, let to, ByteKeys.compare(from, to) >= 0 { return }
        let iterator = rocksdb_create_iterator_cf(try db(), readOptions, family)!
        defer { rocksdb_iter_destroy(iterator) }
        if !reverse {
            if let from {
                from.withUnsafeBufferPointer { f in
                    f.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(iterator, $0.baseAddress, $0.count) }
                }
            } else {
                rocksdb_iter_seek_to_first(iterator)
            }
        } else {
            if let to {
                // seek_for_prev lands on the last key <= to; the bound is exclusive.
                to.withUnsafeBufferPointer { t in
                    t.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek_for_prev(iterator, $0.baseAddress, $0.count) }
                }
                if rocksdb_iter_valid(iterator) != 0 {
                    var length = 0
                    let key = rocksdb_iter_key(iterator, &length)!
                    let equal = to.withUnsafeBufferPointer { t in
                        ByteKeys.compare(UnsafeBufferPointer(start: UnsafeRawPointer(key).assumingMemoryBound(to: UInt8.self), count: length), t) == 0
                    }
                    if equal { rocksdb_iter_prev(iterator) }
                }
            } else {
                rocksdb_iter_seek_to_last(iterator)
            }
        }
        while rocksdb_iter_valid(iterator) != 0 {
            var keyLength = 0, valueLength = 0
            let key = UnsafeRawBufferPointer(start: rocksdb_iter_key(iterator, &keyLength), count: keyLength)
            let keyBytes = key.bindMemory(to: UInt8.self)
            if !reverse, let to {
                if to.withUnsafeBufferPointer({ ByteKeys.compare(keyBytes, $0) }) >= 0 { break }
            }
            if reverse, let from {
                if from.withUnsafeBufferPointer({ ByteKeys.compare(keyBytes, $0) }) < 0 { break }
            }
            let value = UnsafeRawBufferPointer(start: rocksdb_iter_value(iterator, &valueLength), count: valueLength)
            if try !body(key, value) { break }
            if reverse { rocksdb_iter_prev(iterator) } else { rocksdb_iter_next(iterator) }
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        try RocksDBError.check(error, "iterating RocksDB at \(path)")
    }

    private var ingestCounter = 0

    /// Writes `changes` in `order` (positions in strictly ascending key order, as
    /// ``RestoreOrder/lastChangePerKey(_:)`` gives) into one SST file with
    /// `rocksdb_sstfilewriter_*` and adds it to `family` with `rocksdb_ingest_external_file_cf`
    /// (moving the file): bulk loading without the memtable, the write-ahead log or a flush.
    /// Durable on return. The file lives next to the database and is removed on failure.
    func ingest(_ family: OpaquePointer, changes: [KeyChange], order: [Int32]) throws {
        guard !order.isEmpty else { return }
        ingestCounter += 1
        let file = "\(path).restore-\(ingestCounter).sst"
        defer { unlink(file) }
        let environment = rocksdb_envoptions_create()
        defer { rocksdb_envoptions_destroy(environment) }
        let writer = rocksdb_sstfilewriter_create(environment, options.pointer)
        defer { rocksdb_sstfilewriter_destroy(writer) }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_sstfilewriter_open(writer, file, &error)
        try RocksDBError.check(error, "opening restore file \(file)")
        for index in order {
            let change = changes[Int(index)]
            change.key.withUnsafeBufferPointer { k in
                k.withMemoryRebound(to: CChar.self) { k in
                    if let value = change.value {
                        value.withUnsafeBufferPointer { v in
                            v.withMemoryRebound(to: CChar.self) { v in
                                rocksdb_sstfilewriter_put(writer, k.baseAddress, k.count, v.baseAddress, v.count, &error)
                            }
                        }
                    } else {
                        rocksdb_sstfilewriter_delete(writer, k.baseAddress, k.count, &error)
                    }
                }
            }
            try RocksDBError.check(error, "writing restore file \(file)")
        }
        rocksdb_sstfilewriter_finish(writer, &error)
        try RocksDBError.check(error, "finishing restore file \(file)")
        let ingestOptions = rocksdb_ingestexternalfileoptions_create()
        defer { rocksdb_ingestexternalfileoptions_destroy(ingestOptions) }
        rocksdb_ingestexternalfileoptions_set_move_files(ingestOptions, 1)
        let database = try db()
        let cFile = strdup(file)
        defer { free(cFile) }
        var list: [UnsafePointer<CChar>?] = [UnsafePointer(cFile)]
        rocksdb_ingest_external_file_cf(database, family, &list, 1, ingestOptions, &error)
        try RocksDBError.check(error, "ingesting restore file \(file) into \(path)")
    }

    /// `rocksdb_flush_cf` (waiting): memtables of `family` written to SST files.
    func flush(_ family: OpaquePointer) throws {
        let flushOptions = rocksdb_flushoptions_create()
        defer { rocksdb_flushoptions_destroy(flushOptions) }
        rocksdb_flushoptions_set_wait(flushOptions, 1)
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_flush_cf(try db(), flushOptions, family, &error)
        try RocksDBError.check(error, "flushing RocksDB at \(path)")
    }

    /// Flushes `family`'s memtable, then waits until the database has no flush or compaction
    /// running or pending (`rocksdb_property_int` of `rocksdb.num-running-flushes` and
    /// `rocksdb.num-running-compactions`, `rocksdb_property_int_cf` of
    /// `rocksdb.mem-table-flush-pending` and `rocksdb.compaction-pending`), polling every 10 ms.
    /// Throws ``EddyError/Code/timeout`` after `timeoutSeconds`. For benchmarks, which compare
    /// databases in the same settled shape rather than mid-compaction.
    func waitForBackgroundWork(flushing family: OpaquePointer, timeoutSeconds: Double = 300) throws {
        try flush(family)
        let database = try db()
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(timeoutSeconds * 1_000))
        func value(_ name: String, family: OpaquePointer? = nil) -> UInt64 {
            var result: UInt64 = 0
            let failed = family.map { rocksdb_property_int_cf(database, $0, name, &result) } ?? rocksdb_property_int(database, name, &result)
            return failed == 0 ? result : 0
        }
        while value("rocksdb.num-running-flushes") + value("rocksdb.num-running-compactions")
                + value("rocksdb.mem-table-flush-pending", family: family) + value("rocksdb.compaction-pending", family: family) > 0 {
            if clock.now >= deadline {
                throw EddyError(.timeout, "RocksDB at \(path) still flushing or compacting after \(timeoutSeconds) s")
            }
            usleep(10_000)
        }
    }

    /// `rocksdb_property_int_cf("rocksdb.estimate-num-keys")`.
    func estimatedKeyCount(_ family: OpaquePointer) throws -> Int {
        var value: UInt64 = 0
        if rocksdb_property_int_cf(try db(), family, "rocksdb.estimate-num-keys", &value) != 0 { return 0 }
        return Int(value)
    }

    /// `rocksdb_set_options_cf`: changes mutable column-family options (e.g. `write_buffer_size`).
    func setOptions(_ family: OpaquePointer, _ values: [String: String]) throws {
        let keys = values.keys.map { strdup($0) }, vals = values.values.map { strdup($0) }
        defer { keys.forEach { free($0) }; vals.forEach { free($0) } }
        var error: UnsafeMutablePointer<CChar>?
        let database = try db()
        keys.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { k in
            vals.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { v in
                rocksdb_set_options_cf(database, family, Int32(values.count), k.baseAddress, v.baseAddress, &error)
            }
        }
        try RocksDBError.check(error, "setting options on RocksDB at \(path)")
    }

    /// `rocksdb_column_family_handle_destroy` for every family, then `rocksdb_close`.
    /// Idempotent.
    func close() {
        guard let database else { return }
        for handle in families.values { rocksdb_column_family_handle_destroy(handle) }
        families = [:]
        rocksdb_close(database)
        self.database = nil
    }
}
