/// An ordered map from byte strings to values: a sorted list of sorted chunks (a flat, two-level
/// B-tree). Lookups cost two binary searches; an insert moves at most one chunk's worth of
/// entries, so large maps stay fast without a tree of pointers.
///
/// Used as the in-memory store engine and as the uncommitted write buffer of every store.
/// A value type: iterating a copy while the original changes is safe (copy on write).
struct SortedByteMap<Value> {
    typealias Entry = (key: [UInt8], value: Value)

    /// A chunk is split in two when it grows past this many entries.
    static var chunkCapacity: Int { 512 }

    private var chunks: [[Entry]] = []
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    /// Index of the first chunk whose last key is >= `key` (chunks.count when none).
    private func chunkIndex(atOrAfter key: [UInt8]) -> Int {
        var low = 0, high = chunks.count
        while low < high {
            let mid = (low + high) / 2
            if ByteKeys.compare(chunks[mid][chunks[mid].count - 1].key, key) < 0 { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Index of the first entry in `chunk` whose key is >= `key`.
    private static func lowerBound(_ chunk: [Entry], _ key: [UInt8]) -> Int {
        var low = 0, high = chunk.count
        while low < high {
            let mid = (low + high) / 2
            if ByteKeys.compare(chunk[mid].key, key) < 0 { low = mid + 1 } else { high = mid }
        }
        return low
    }

    subscript(key: [UInt8]) -> Value? {
        let c = chunkIndex(atOrAfter: key)
        guard c < chunks.count else { return nil }
        let i = Self.lowerBound(chunks[c], key)
        guard i < chunks[c].count, ByteKeys.compare(chunks[c][i].key, key) == 0 else { return nil }
        return chunks[c][i].value
    }

    /// Inserts or replaces the value of `key`.
    mutating func set(_ key: [UInt8], _ value: Value) {
        if chunks.isEmpty {
            chunks.append([(key, value)])
            count = 1
            return
        }
        var c = chunkIndex(atOrAfter: key)
        if c == chunks.count { c -= 1 }  // past every key: append to the last chunk
        let i = Self.lowerBound(chunks[c], key)
        if i < chunks[c].count, ByteKeys.compare(chunks[c][i].key, key) == 0 {
            chunks[c][i].value = value
            return
        }
        chunks[c].insert((key, value), at: i)
        count += 1
        if chunks[c].count > Self.chunkCapacity {
            let half = chunks[c].count / 2
            let upper = Array(chunks[c][half...])
            chunks[c].removeSubrange(half...)
            chunks.insert(upper, at: c + 1)
        }
    }

    /// Removes `key`; returns its value if it was present.
    @discardableResult
    mutating func remove(_ key: [UInt8]) -> Value? {
        let c = chunkIndex(atOrAfter: key)
        guard c < chunks.count else { return nil }
        let i = Self.lowerBound(chunks[c], key)
        guard i < chunks[c].count, ByteKeys.compare(chunks[c][i].key, key) == 0 else { return nil }
        let value = chunks[c].remove(at: i).value
        count -= 1
        if chunks[c].isEmpty { chunks.remove(at: c) }
        return value
    }

    /// Removes every key in [from, to) (`nil`: unbounded) in bulk.
    mutating func removeRange(from: [UInt8]?, to: [UInt8]?) {
        if let from, let to, ByteKeys.compare(from, to) >= 0 { return }
        var kept: [[Entry]] = []
        kept.reserveCapacity(chunks.count)
        var removed = 0
        for chunk in chunks {
            let first = chunk[0].key, last = chunk[chunk.count - 1].key
            let startsInside = from.map { ByteKeys.compare(first, $0) >= 0 } ?? true
            let endsInside = to.map { ByteKeys.compare(last, $0) < 0 } ?? true
            let beforeRange = from.map { ByteKeys.compare(last, $0) < 0 } ?? false
            let afterRange = to.map { ByteKeys.compare(first, $0) >= 0 } ?? false
            if beforeRange || afterRange {
                kept.append(chunk)
            } else if startsInside && endsInside {
                removed += chunk.count
            } else {
                let lower = from.map { Self.lowerBound(chunk, $0) } ?? 0
                let upper = to.map { Self.lowerBound(chunk, $0) } ?? chunk.count
                removed += upper - lower
                var rest = chunk
                rest.removeSubrange(lower..<upper)
                if !rest.isEmpty { kept.append(rest) }
            }
        }
        chunks = kept
        count -= removed
    }

    mutating func removeAll() {
        chunks = []
        count = 0
    }

    /// Visits entries with `from <= key < to` (`nil`: unbounded), in ascending or descending key
    /// order, until `body` returns false.
    func forEach(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
                 _ body: (_ key: [UInt8], _ value: Value) throws -> Bool) rethrows {
        guard !chunks.isEmpty else { return }
        if let from, let to, ByteKeys.compare(from, to) >= 0 { return }
        if !reverse {
            var c = from.map { chunkIndex(atOrAfter: $0) } ?? 0
            guard c < chunks.count else { return }
            var i = from.map { Self.lowerBound(chunks[c], $0) } ?? 0
            while c < chunks.count {
                let chunk = chunks[c]
                while i < chunk.count {
                    let entry = chunk[i]
                    if let to, ByteKeys.compare(entry.key, to) >= 0 { return }
                    if try !body(entry.key, entry.value) { return }
                    i += 1
                }
                c += 1
                i = 0
            }
        } else {
            // Start at the last entry < to.
            var c: Int, i: Int
            if let to {
                c = chunkIndex(atOrAfter: to)
                if c == chunks.count {
                    c -= 1
                    i = chunks[c].count - 1
                } else {
                    i = Self.lowerBound(chunks[c], to) - 1
                }
            } else {
                c = chunks.count - 1
                i = chunks[c].count - 1
            }
            while c >= 0 {
                let chunk = chunks[c]
                while i >= 0 {
                    let entry = chunk[i]
                    if let from, ByteKeys.compare(entry.key, from) < 0 { return }
                    if try !body(entry.key, entry.value) { return }
                    i -= 1
                }
                c -= 1
                if c >= 0 { i = chunks[c].count - 1 }
            }
        }
    }

    /// The entries with `from <= key < to`, in the requested order.
    func entries(from: [UInt8]?, to: [UInt8]?, reverse: Bool) -> [Entry] {
        var result: [Entry] = []
        forEach(from: from, to: to, reverse: reverse) { key, value in
            result.append((key, value))
            return true
        }
        return result
    }
}
