/// The cached entries of one window of a ``PersistentTaskWindowStore``, and which of them
/// are not written back yet.
///
/// Values live in slots: a dictionary from serialised key to slot number (no generic
/// parameter, so it runs specialised and hashes once per access), the slots' bookkeeping in a
/// plain array, and the typed values in a buffer of their own. An update is one hash lookup
/// and two slot writes; unspecialised code over `[ByteKey: Value]` cost several times that.
/// The values are kept in manually managed memory because unspecialised `Array<Value>` code
/// looks the array type's metadata up on every append and write; pointer operations on
/// `Value` need none. A cache belongs to one task's store, on one thread, and calls nothing
/// that could reach it again, hence the unchecked exclusivity.
final class WindowCache<Value> {
    @exclusivity(unchecked) private var index: [ByteKey: Int] = [:]
    @exclusivity(unchecked) private var slots: [WindowCacheSlot] = []
    /// `slots.count` initialised values (stale for deleted slots), room for `capacity`.
    @exclusivity(unchecked) private var values: UnsafeMutablePointer<Value>
    @exclusivity(unchecked) private var capacity: Int
    /// Slots with changes not written back, in the order they first changed.
    @exclusivity(unchecked) private var pending: [Int] = []
    /// Deletes of keys the window never held (written back before the slots' changes).
    @exclusivity(unchecked) private var absentDeletes: [ByteKey] = []
    /// The serialised values awaiting write-back, back to back (slots point into it): no
    /// allocation per update. Emptied by each write-back.
    @exclusivity(unchecked) private var arena: [UInt8] = []

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        values = .allocate(capacity: self.capacity)
        index.reserveCapacity(capacity)
        slots.reserveCapacity(capacity)
    }
    deinit {
        values.deinitialize(count: slots.count)
        values.deallocate()
    }

    /// Appends a value for a new slot, growing the buffer by doubling.
    private func appendValue(_ value: Value) {
        let count = slots.count
        if count == capacity {
            let grown = UnsafeMutablePointer<Value>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: values, count: count)
            values.deallocate()
            values = grown
            capacity *= 2
        }
        (values + count).initialize(to: value)
    }

    /// Slots ever used: an estimate of how many keys the next window will hold.
    var capacityHint: Int { slots.count }
    /// Whether some change is not written back.
    var hasPending: Bool { !pending.isEmpty || !absentDeletes.isEmpty }

    /// The value of `key`, or `nil`.
    func value(_ key: ByteKey) -> Value? {
        guard let i = index[key], slots[i].present else { return nil }
        return values[i]
    }

    /// Sets the value of `key`, to be written back as the bytes `serialize` appends. If
    /// `serialize` throws, or `check` does when given their count, nothing changes.
    func set(_ key: ByteKey, _ value: Value, serialize: (inout [UInt8]) throws -> Void,
             check: (_ valueBytes: Int) throws -> Void) throws {
        try update(key, { _ in value }, serialize: { _, bytes in try serialize(&bytes) }, check: check)
    }
    /// Sets the value of `key` to `body(its value)`, to be written back as the bytes
    /// `serialize` appends: ``value(_:)`` and a set with one hash lookup. If `body`,
    /// `serialize` or `check` throws, nothing changes.
    func update(_ key: ByteKey, _ body: (Value?) throws -> Value, serialize: (Value, inout [UInt8]) throws -> Void,
                check: (_ valueBytes: Int) throws -> Void) throws {
        let next = slots.count
        let i = Self.claim(&index[key, default: next])
        let isNew = i == next
        let start = arena.count
        let value: Value
        do {
            value = try body(isNew || !slots[i].present ? nil : values[i])
            try serialize(value, &arena)
            try check(arena.count - start)
        } catch {
            if isNew { index.removeValue(forKey: key) }
            arena.removeSubrange(start...)
            throw error
        }
        let count = arena.count - start
        if isNew {
            appendValue(value)
            slots.append(WindowCacheSlot(key: key, encodedStart: start, encodedCount: count, present: true, pending: true))
            pending.append(i)
            return
        }
        values[i] = value
        slots[i].encodedStart = start
        slots[i].encodedCount = count
        slots[i].present = true
        markPending(i)
    }
    /// Deletes `key`; the delete is written back even when the window never held it (the
    /// byte store's stream time then advances as the wrapper's does).
    func delete(_ key: ByteKey) {
        guard let i = index[key] else {
            absentDeletes.append(key)
            return
        }
        slots[i].present = false
        markPending(i)
    }
    private func markPending(_ i: Int) {
        if !slots[i].pending {
            slots[i].pending = true
            pending.append(i)
        }
    }
    /// Reads a dictionary slot through its `default:` accessor, inserting the default when
    /// absent: one hash lookup for both cases.
    private static func claim(_ slot: inout Int) -> Int { slot }

    /// Passes each change not written back, as serialised key and value (`nil`: a delete), to
    /// `write`, then forgets them. A throw leaves the unvisited changes pending.
    func writeBack(_ write: (_ key: [UInt8], _ value: [UInt8]?) throws -> Void) throws {
        for key in absentDeletes { try write(key.bytes, nil) }
        absentDeletes.removeAll()
        for i in pending {
            let slot = slots[i]
            try write(slot.key.bytes, slot.present ? Array(arena[slot.encodedStart..<(slot.encodedStart + slot.encodedCount)]) : nil)
            slots[i].pending = false
        }
        pending.removeAll()
        arena.removeAll(keepingCapacity: true)
    }
    /// Forgets the changes not written back (the window expired before its write-back).
    func discardPending() {
        for i in pending { slots[i].pending = false }
        pending.removeAll()
        absentDeletes.removeAll()
        arena = []
    }

    /// The serialised keys of the present entries in their order (``StoreBytes/less(_:_:)``),
    /// and their slots, for ``value(atSlot:)``.
    func liveInKeyOrder() -> (keys: [[UInt8]], slots: [Int]) {
        var live: [Int] = []
        live.reserveCapacity(slots.count)
        var keys: [[UInt8]] = []
        keys.reserveCapacity(slots.count)
        for i in slots.indices where slots[i].present {
            live.append(i)
            keys.append(slots[i].key.bytes)
        }
        let order = StoreBytes.sortedIndices(keys)
        return (order.map { keys[$0] }, order.map { live[$0] })
    }
    /// The value in slot `slot` (one that ``liveInKeyOrder()`` returned).
    func value(atSlot slot: Int) -> Value { values[slot] }
}

/// What a ``WindowCache`` keeps per slot besides the value (outside the generic class, so
/// arrays of it run specialised).
struct WindowCacheSlot {
    let key: ByteKey
    /// Where the serialised value awaiting write-back is in the cache's arena (meaningless
    /// unless `pending` and `present`).
    var encodedStart: Int
    var encodedCount: Int
    /// False once deleted (the value in `values` is then stale).
    var present: Bool
    var pending: Bool
}
