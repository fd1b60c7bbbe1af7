/// A stack of reusable objects for the Codable encoder and decoder: one entry per nesting level
/// in use. Values are encoded and decoded depth first, so the entry on top is always the one
/// finishing, and every ``acquire(_:reset:)`` is paired with a ``release()``.
///
/// An entry is reused only when the pool holds its sole reference; an object someone kept (a
/// container that escaped its `encode(to:)` or `init(from:)`) stays theirs and a new one takes
/// its place.
struct AvroObjectPool<Element: AnyObject> {
    private var items: [Element] = []
    private var top = 0

    /// The entry for the next nesting level: reused and `reset`, or made by `make`.
    @inline(__always) mutating func acquire(_ make: () -> Element, reset: (Element) -> Void) -> Element {
        let index = top
        top = index + 1
        if index < items.count {
            if isKnownUniquelyReferenced(&items[index]) {
                let item = items[index]
                reset(item)
                return item
            }
            let item = make()
            items[index] = item
            return item
        }
        let item = make()
        items.append(item)
        return item
    }

    /// Gives back the entry on top.
    @inline(__always) mutating func release() { top -= 1 }

    /// Forgets every entry (between calls, or to break the entries' references to their owner).
    mutating func removeAll(keepingEntries: Bool) {
        top = 0
        if !keepingEntries { items = [] }
    }
}

/// A record field named by its schema name, for coding paths (the key the value's type used
/// matched the field by this name).
struct AvroFieldKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A container of the Codable encoder or decoder with work left when the value that opened it is
/// done (an array's or map's block written out, a record's missing fields filled or skipped).
protocol AvroContainerFinisher: AnyObject {
    func finish() throws
}
