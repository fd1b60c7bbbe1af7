/// The cached entries of one window of a ``PersistentTaskWindowStore``, and which of them
/// are not written back yet.
///
/// Values live in slots: a dictionary from serialised key to slot number (no generic
/// parameter, so it runs specialised and hashes once per access), the slots' bookkeeping in a
/// plain array, and the typed values in an array of their own. An update is one hash lookup
/// and two array writes; unspecialised code over `[ByteKey: Value]` cost several times that.
final class WindowCache<Value> {
    /// What the cache keeps per slot besides the value.
    struct Slot {
        let key: ByteKey
        /// The serialised value awaiting write-back (`nil` with `pending`: a delete).
        var encoded: [UInt8]?
        /// False once deleted (the value in `values` is then stale).
        var present: Bool
        var pending: Bool
    }
    private var index: [ByteKey: Int] = [:]
    private var slots: [Slot] = []
    private var values: [Value] = []
    /// Slots with changes not written back, in the order they first changed.
    private var pending: [Int] = []
    /// Deletes of keys the window never held (written back before the slots' changes).
    private var absentDeletes: [ByteKey] = []

    init(capacity: Int) {
        index.reserveCapacity(capacity)
        slots.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
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

    /// Sets the value of `key`, to be written back as `encoded`.
    func set(_ key: ByteKey, _ value: Value, encoded: [UInt8]) {
        let next = slots.count
        let i = Self.claim(&index[key, default: next])
        if i == next {
            slots.append(Slot(key: key, encoded: encoded, present: true, pending: true))
            values.append(value)
            pending.append(i)
            return
        }
        values[i] = value
        slots[i].encoded = encoded
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
        slots[i].encoded = nil
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
            try write(slots[i].key.bytes, slots[i].present ? slots[i].encoded : nil)
            slots[i].encoded = nil
            slots[i].pending = false
        }
        pending.removeAll()
    }
    /// Forgets the changes not written back (the window expired before its write-back).
    func discardPending() {
        for i in pending {
            slots[i].encoded = nil
            slots[i].pending = false
        }
        pending.removeAll()
        absentDeletes.removeAll()
    }

    /// Visits the present entries in the order of their serialised keys (``StoreBytes/less(_:_:)``).
    func forEachInKeyOrder(_ body: (_ key: [UInt8], _ value: Value) throws -> Void) throws {
        var live: [Int] = []
        live.reserveCapacity(slots.count)
        var keys: [[UInt8]] = []
        keys.reserveCapacity(slots.count)
        for i in slots.indices where slots[i].present {
            live.append(i)
            keys.append(slots[i].key.bytes)
        }
        for j in StoreBytes.sortedIndices(keys) { try body(keys[j], values[live[j]]) }
    }
}
