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
    /// The underlying byte store.
    public let store: any KeyValueStore
    /// Turns keys into bytes and back.
    public let keySerde: any Serde<Key>
    /// Turns values into bytes and back.
    public let valueSerde: any Serde<Value>

    /// A view of `store` through the serdes. Serde errors (``EddyError/Code/serialization``)
    /// pass through every call unchanged.
    public init(_ store: any KeyValueStore, keySerde: any Serde<Key>, valueSerde: any Serde<Value>) {
        self.store = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    /// ``KeyValueStore/get(_:)`` through the serdes.
    public func get(_ key: Key) throws -> Value? {
        try store.get(keySerde.serialize(key)).map(valueSerde.deserialize)
    }
    /// ``KeyValueStore/put(_:_:)`` through the serdes.
    public func put(_ key: Key, _ value: Value) throws {
        try store.put(keySerde.serialize(key), valueSerde.serialize(value))
    }
    /// ``KeyValueStore/delete(_:)`` through the serdes.
    @discardableResult public func delete(_ key: Key) throws -> Value? {
        try store.delete(keySerde.serialize(key)).map(valueSerde.deserialize)
    }
    /// ``KeyValueStore/putIfAbsent(_:_:)`` through the serdes.
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
    /// The underlying byte store.
    public let store: any WindowStore
    /// Turns keys into bytes and back.
    public let keySerde: any Serde<Key>
    /// Turns values into bytes and back.
    public let valueSerde: any Serde<Value>

    /// A view of `store` through the serdes.
    public init(_ store: any WindowStore, keySerde: any Serde<Key>, valueSerde: any Serde<Value>) {
        self.store = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    /// ``WindowStore/put(_:windowStart:value:)`` through the serdes.
    public func put(_ key: Key, windowStart: Timestamp, value: Value?) throws {
        try store.put(keySerde.serialize(key), windowStart: windowStart, value: value.map(valueSerde.serialize))
    }
    /// ``WindowStore/fetch(_:windowStart:)`` through the serdes.
    public func fetch(_ key: Key, windowStart: Timestamp) throws -> Value? {
        try store.fetch(keySerde.serialize(key), windowStart: windowStart).map(valueSerde.deserialize)
    }
    /// The windows of `key` starting in [from, to], ascending by window start.
    public func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(windowStart: Timestamp, value: Value)] {
        try store.fetch(keySerde.serialize(key), from: from, to: to).map { ($0.windowStart, try valueSerde.deserialize($0.value)) }
    }
}
