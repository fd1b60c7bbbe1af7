import EddyCore

/// A typed view of a ``KeyValueStore``: keys and values go through serdes. Ranges compare the
/// *serialized* keys, so choose a key serde whose bytes sort like its values (big-endian
/// integers, UTF-8 strings) when ranges matter.
///
/// ```swift
/// let counts = TypedKeyValueStore(store, keySerde: StringSerde(), valueSerde: Int64Serde())
/// try counts.put("apples", 3)
/// ```
public struct TypedKeyValueStore<Key, Value> {
    public let store: any KeyValueStore
    public let keySerde: any Serde<Key>
    public let valueSerde: any Serde<Value>

    public init(_ store: any KeyValueStore, keySerde: any Serde<Key>, valueSerde: any Serde<Value>) {
        self.store = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    public func get(_ key: Key) throws -> Value? {
        try store.get(keySerde.serialize(key)).map(valueSerde.deserialize)
    }
    public func put(_ key: Key, _ value: Value) throws {
        try store.put(keySerde.serialize(key), valueSerde.serialize(value))
    }
    @discardableResult public func delete(_ key: Key) throws -> Value? {
        try store.delete(keySerde.serialize(key)).map(valueSerde.deserialize)
    }
    @discardableResult public func putIfAbsent(_ key: Key, _ value: Value) throws -> Value? {
        try store.putIfAbsent(keySerde.serialize(key), valueSerde.serialize(value)).map(valueSerde.deserialize)
    }
    /// Entries with `from <= key < to` (by serialized key), ascending, at most `limit`.
    public func range(from: Key, to: Key, limit: Int = .max) throws -> [(key: Key, value: Value)] {
        try store.range(from: keySerde.serialize(from), to: keySerde.serialize(to), limit: limit).map(decode)
    }
    /// Every entry, ascending by serialized key, at most `limit`.
    public func all(limit: Int = .max) throws -> [(key: Key, value: Value)] {
        try store.all(limit: limit).map(decode)
    }

    private func decode(_ entry: KeyValue) throws -> (key: Key, value: Value) {
        (try keySerde.deserialize(entry.key), try valueSerde.deserialize(entry.value))
    }
}

/// A typed view of a ``WindowStore`` through serdes.
public struct TypedWindowStore<Key, Value> {
    public let store: any WindowStore
    public let keySerde: any Serde<Key>
    public let valueSerde: any Serde<Value>

    public init(_ store: any WindowStore, keySerde: any Serde<Key>, valueSerde: any Serde<Value>) {
        self.store = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    public func put(_ key: Key, windowStart: Timestamp, value: Value?) throws {
        try store.put(keySerde.serialize(key), windowStart: windowStart, value: value.map(valueSerde.serialize))
    }
    public func fetch(_ key: Key, windowStart: Timestamp) throws -> Value? {
        try store.fetch(keySerde.serialize(key), windowStart: windowStart).map(valueSerde.deserialize)
    }
    /// The windows of `key` starting in [from, to], ascending by window start.
    public func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(windowStart: Timestamp, value: Value)] {
        try store.fetch(keySerde.serialize(key), from: from, to: to).map { ($0.windowStart, try valueSerde.deserialize($0.value)) }
    }
}
