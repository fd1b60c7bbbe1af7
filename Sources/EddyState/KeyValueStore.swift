import EddyCore

/// An ordered key-value store of bytes (Kafka Streams' `KeyValueStore`): keys sort
/// lexicographically by unsigned bytes. Reads see uncommitted writes.
///
/// Ranges are half-open, `[from, to)`. Scans are closure-based or return arrays with a limit,
/// so no iterator outlives a call. `body` must not write to the store it is scanning.
///
/// ```swift
/// try store.put(Array("apple".utf8), Array("3".utf8))
/// let fruits = try store.prefix(Array("a".utf8))
/// try store.commit(flushing: producer)
/// ```
public protocol KeyValueStore: StateStore {
    /// The value of `key`, or `nil`.
    func get(_ key: [UInt8]) throws -> [UInt8]?
    /// Sets `key` to `value`. Throws ``EddyError/Code/recordTooLarge`` over ``StateLimits``.
    func put(_ key: [UInt8], _ value: [UInt8]) throws
    /// Removes `key`; returns the value it had.
    @discardableResult func delete(_ key: [UInt8]) throws -> [UInt8]?
    /// Sets `key` to `value` only if it has no value; returns the existing value (`nil` if it
    /// was absent and `value` was written).
    @discardableResult func putIfAbsent(_ key: [UInt8], _ value: [UInt8]) throws -> [UInt8]?
    /// Visits the entries with `from <= key < to` (`nil`: unbounded) in ascending or, with
    /// `reverse`, descending key order until `body` returns false.
    func forEach(from: [UInt8]?, to: [UInt8]?, reverse: Bool, _ body: (KeyValue) throws -> Bool) throws
    /// ``forEach(from:to:reverse:_:)`` without copies: `body` borrows each key and value, which
    /// are valid only during that call (copy what you keep). Saves two allocations per entry
    /// for scans that only inspect or decode entries.
    func forEachBorrowed(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
                         _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws
    /// An estimate of the number of keys, uncommitted changes included: exact for the in-memory
    /// store; RocksDB's `rocksdb.estimate-num-keys` adjusted by the write buffer for RocksDB.
    func approximateCount() throws -> Int
}

extension KeyValueStore {
    /// Entries with `from <= key < to`, ascending, at most `limit`.
    public func range(from: [UInt8], to: [UInt8], limit: Int = .max) throws -> [KeyValue] {
        try collect(from: from, to: to, reverse: false, limit: limit)
    }
    /// Entries with `from <= key < to`, descending, at most `limit`.
    public func reverseRange(from: [UInt8], to: [UInt8], limit: Int = .max) throws -> [KeyValue] {
        try collect(from: from, to: to, reverse: true, limit: limit)
    }
    /// Entries whose key starts with `prefix`, ascending, at most `limit`.
    public func prefix(_ prefix: [UInt8], limit: Int = .max) throws -> [KeyValue] {
        try collect(from: prefix, to: ByteKeys.prefixEnd(prefix), reverse: false, limit: limit)
    }
    /// Every entry, ascending (descending with `reverse`), at most `limit`.
    public func all(reverse: Bool = false, limit: Int = .max) throws -> [KeyValue] {
        try collect(from: nil, to: nil, reverse: reverse, limit: limit)
    }

    private func collect(from: [UInt8]?, to: [UInt8]?, reverse: Bool, limit: Int) throws -> [KeyValue] {
        guard limit > 0 else { return [] }
        var result: [KeyValue] = []
        try forEach(from: from, to: to, reverse: reverse) { entry in
            result.append(entry)
            return result.count < limit
        }
        return result
    }
}

/// The key-value logic shared by ``RocksDBKeyValueStore`` and ``InMemoryKeyValueStore``:
/// internal keys are the application's keys.
final class KeyValueLogic {
    let core: StoreCore
    init(core: StoreCore) { self.core = core }

    func get(_ key: [UInt8]) throws -> [UInt8]? { try core.get(key) }

    func put(_ key: [UInt8], _ value: [UInt8]) throws {
        try StateLimits.check(key: key, value: value, store: core.name)
        try core.put(key, value)
    }

    func delete(_ key: [UInt8]) throws -> [UInt8]? {
        let old = try core.get(key)
        try core.put(key, nil)
        return old
    }

    func putIfAbsent(_ key: [UInt8], _ value: [UInt8]) throws -> [UInt8]? {
        if let existing = try core.get(key) { return existing }
        try put(key, value)
        return nil
    }

    func forEach(from: [UInt8]?, to: [UInt8]?, reverse: Bool, _ body: (KeyValue) throws -> Bool) throws {
        try core.scan(from: from, to: to, reverse: reverse) { key, value in try body(KeyValue(key: key, value: value)) }
    }

    func forEachBorrowed(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
                         _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try core.scanBorrowed(from: from, to: to, reverse: reverse, body)
    }

    func approximateCount() throws -> Int {
        var added = 0
        try core.buffer.forEach(from: nil, to: nil, reverse: false) { key, value in
            let committed = try core.engine.get(key) != nil
            if value != nil && !committed { added += 1 }
            if value == nil && committed { added -= 1 }
            return true
        }
        return max(0, try core.engine.approximateCount() + added)
    }
}

extension KeyValueLogic {
    func commit() throws { try core.commit() }
    func abort() { core.abort() }
}
