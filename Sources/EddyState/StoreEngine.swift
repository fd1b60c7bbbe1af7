import EddyCore

/// A change to one key: a value, or `nil` for a delete.
typealias KeyChange = (key: [UInt8], value: [UInt8]?)

/// The committed data of one store: an ordered byte map plus a few named integers of metadata
/// (the changelog checkpoint, the stream time), changed atomically. Two engines exist:
/// ``RocksDBEngine`` (a column family) and ``InMemoryEngine`` (a ``SortedByteMap``). Everything
/// above (write buffer, changelog, window and session layouts) is shared by both.
///
/// Engines are confined to the thread that owns the store.
protocol StoreEngine: AnyObject {
    func get(_ key: [UInt8]) throws -> [UInt8]?
    /// Visits keys in [from, to) (`nil`: unbounded) in ascending or descending order until `body`
    /// returns false. The buffers are valid only during the call to `body`.
    func scan(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
              _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws
    /// Applies every change, every range deletion [from, to) and the metadata in one atomic step.
    /// Range deletions come first, then the changes.
    func apply(_ changes: SortedByteMap<[UInt8]?>, deleteRanges: [(from: [UInt8], to: [UInt8])],
               metadata: [String: Int64]) throws
    func metadata(_ field: String) throws -> Int64?
    func approximateCount() throws -> Int
    /// Bulk writes for restoration: fast, not durable until ``finishRestore(metadata:)``.
    func restore(_ changes: [KeyChange]) throws
    /// Makes restored data durable, then records `metadata` (so a crash before this point
    /// replays the restore from the old checkpoint).
    func finishRestore(metadata: [String: Int64]) throws
    /// Deletes all data and metadata of the store.
    func clear() throws
    func close()
}

/// The in-memory engine: a ``SortedByteMap`` and a dictionary.
final class InMemoryEngine: StoreEngine {
    private var map = SortedByteMap<[UInt8]>()
    private var fields: [String: Int64] = [:]

    func get(_ key: [UInt8]) throws -> [UInt8]? { map[key] }

    func scan(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
              _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try map.forEach(from: from, to: to, reverse: reverse) { key, value in
            try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try body(k, v) } }
        }
    }

    func apply(_ changes: SortedByteMap<[UInt8]?>, deleteRanges: [(from: [UInt8], to: [UInt8])],
               metadata: [String: Int64]) throws {
        for range in deleteRanges { map.removeRange(from: range.from, to: range.to) }
        changes.forEach(from: nil, to: nil, reverse: false) { key, value in
            if let value { map.set(key, value) } else { map.remove(key) }
            return true
        }
        fields.merge(metadata) { $1 }
    }

    func metadata(_ field: String) throws -> Int64? { fields[field] }
    func approximateCount() throws -> Int { map.count }

    func restore(_ changes: [KeyChange]) throws {
        for change in changes {
            if let value = change.value { map.set(change.key, value) } else { map.remove(change.key) }
        }
    }

    func finishRestore(metadata: [String: Int64]) throws { fields.merge(metadata) { $1 } }

    func clear() throws {
        map.removeAll()
        fields = [:]
    }

    func close() {}
}

/// The RocksDB engine: one column family of a task's database; metadata lives in the database's
/// `default` column family under `<store>/<field>`, so a commit's data and checkpoint go into one
/// `WriteBatch`.
final class RocksDBEngine: StoreEngine {
    let name: String
    private let handle: RocksDBHandle
    private let environment: RocksDBEnvironment
    private var family: OpaquePointer
    private var registration: RocksDBEnvironment.Registration?
    private let onClose: () -> Void
    /// True between the first restore batch and ``finishRestore(metadata:)``.
    private var restoring = false

    init(name: String, handle: RocksDBHandle, environment: RocksDBEnvironment, onClose: @escaping () -> Void) throws {
        self.name = name
        self.handle = handle
        self.environment = environment
        self.onClose = onClose
        family = try handle.family(name)
        let registration = RocksDBEnvironment.Registration(handle: handle, family: family)
        environment.register(registration)
        self.registration = registration
    }

    deinit { close() }

    private func metadataKey(_ field: String) -> [UInt8] { Array("\(name)/\(field)".utf8) }

    private static func encode(_ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        ByteKeys.appendOrdered(value, to: &bytes)
        return bytes
    }

    func get(_ key: [UInt8]) throws -> [UInt8]? { try handle.get(family, key) }

    func scan(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
              _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try handle.scan(family, from: from, to: to, reverse: reverse, body)
    }

    func apply(_ changes: SortedByteMap<[UInt8]?>, deleteRanges: [(from: [UInt8], to: [UInt8])],
               metadata: [String: Int64]) throws {
        let batch = RocksDBWriteBatch()
        for range in deleteRanges { batch.deleteRange(family, from: range.from, to: range.to) }
        changes.forEach(from: nil, to: nil, reverse: false) { key, value in
            if let value { batch.put(family, key, value) } else { batch.delete(family, key) }
            return true
        }
        for (field, value) in metadata { batch.put(handle.metadataFamily, metadataKey(field), Self.encode(value)) }
        try handle.write(batch)
    }

    func metadata(_ field: String) throws -> Int64? {
        guard let bytes = try handle.get(handle.metadataFamily, metadataKey(field)) else { return nil }
        guard bytes.count == 8 else {
            throw EddyError(.corrupt, "metadata \(name).\(field) in \(handle.path) has \(bytes.count) bytes, expected 8")
        }
        return ByteKeys.readOrdered(bytes, at: 0)
    }

    func approximateCount() throws -> Int { try handle.estimatedKeyCount(family) }

    /// Batches of at least this many distinct keys are bulk-loaded as an SST file; smaller ones
    /// go through a `WriteBatch` (one tiny file per small batch would only make work for compaction).
    static let ingestionThreshold = 10_000

    /// Applies the batch sorted by key, keeping only the last change per key (the batch is
    /// atomic, so only its final state matters). Large batches become one SST file ingested
    /// directly into the column family (no memtable, no write-ahead log); smaller ones are a
    /// `WriteBatch` without the write-ahead log, in key order so RocksDB's skip-list memtable
    /// reuses its insertion point instead of searching from the top for every random key.
    func restore(_ changes: [KeyChange]) throws {
        let order = RestoreOrder.lastChangePerKey(changes)
        if !restoring {
            // Bulk-load mode: compactions wait until the restore is done instead of competing
            // with it (RocksDB's PrepareForBulkLoad does the same). Not persisted: a reopen
            // starts with compactions on.
            try handle.setOptions(family, ["disable_auto_compactions": "true"])
            restoring = true
        }
        if order.count >= Self.ingestionThreshold {
            try handle.ingest(family, changes: changes, order: order)
            return
        }
        let batch = RocksDBWriteBatch()
        for index in order {
            let change = changes[Int(index)]
            if let value = change.value { batch.put(family, change.key, value) } else { batch.delete(family, change.key) }
        }
        try handle.write(batch, disableWAL: true)
    }

    func finishRestore(metadata: [String: Int64]) throws {
        if restoring {
            try handle.setOptions(family, ["disable_auto_compactions": "false"])
            restoring = false
        }
        try handle.flush(family)
        let batch = RocksDBWriteBatch()
        for (field, value) in metadata { batch.put(handle.metadataFamily, metadataKey(field), Self.encode(value)) }
        try handle.write(batch)
    }

    func clear() throws {
        if let registration { environment.unregister(registration) }
        registration = nil
        family = try handle.recreateFamily(name)
        let registration = RocksDBEnvironment.Registration(handle: handle, family: family)
        environment.register(registration)
        self.registration = registration
        let batch = RocksDBWriteBatch()
        for field in StoreCore.metadataFields { batch.delete(handle.metadataFamily, metadataKey(field)) }
        try handle.write(batch)
    }

    func close() {
        guard let registration else { return }
        environment.unregister(registration)
        self.registration = nil
        onClose()
    }
}
