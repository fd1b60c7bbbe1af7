import EddyCore

/// The aggregation step shared by count, reduce and aggregate: the new aggregate from the
/// key, the record's value and the current aggregate (`nil` when there is none yet).
@usableFromInline typealias AggregateStep<K, V, VR> = (K, V, VR?) throws -> VR

/// `groupByKey().count/reduce/aggregate`: one aggregate per key in a key-value store;
/// forwards each update as a ``Change``.
final class KeyedAggregateNode<K: Hashable, V, VR>: ProcessorNode<K, V, K, Change<VR>> {
    let storeName: String
    let step: AggregateStep<K, V, VR>
    var store: (any TaskKeyValueStore<K, VR>)! = nil
    init(name: String, children: [AnyObject], store: String, step: @escaping AggregateStep<K, V, VR>) {
        self.storeName = store
        self.step = step
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<K, VR>).self, node: name)
    }
    override func process(_ key: K, _ value: V) throws {
        let old = try store.get(key)
        let new = try step(key, value, old)
        try store.put(key, new)
        try forward(key, Change(newValue: new, oldValue: old))
    }
}

/// Aggregation over tumbling or hopping windows in a window store.
///
/// With `emitFinal` (``EmitStrategy/onWindowClose``, Kafka's KIP-825) it forwards nothing per
/// update: once stream time (the largest timestamp this node has seen) reaches a window's
/// `end + grace`, it reads the closed windows back from the store (`fetchAll`) and forwards
/// each final aggregate, by window start then key, with the window's last timestamp
/// (`end - 1`) and the headers of the record that closed it. The close time up to which it
/// has emitted is processor metadata, committed with the input offsets, so a restarted or
/// migrated task sends every final result exactly once. Closed windows are emitted before the
/// record that closes them is added, while the store still keeps them (a window store with the
/// minimum retention forgets a window as soon as a window `retention` later is written).
final class TimeWindowAggregateNode<K: Hashable, V, VR>: ProcessorNode<K, V, Windowed<K>, Change<VR>> {
    let storeName: String
    let windows: TimeWindows
    let retention: Int64
    let step: AggregateStep<K, V, VR>
    let emitFinal: Bool
    var store: (any TaskWindowStore<K, VR>)! = nil
    /// The store when it is persistent and the node emits final results only: updated
    /// through ``PersistentTaskWindowStore/accumulate(_:windowStart:_:)``, a direct call that
    /// returns nothing.
    var accumulating: PersistentTaskWindowStore<K, VR>? = nil
    /// Largest timestamp this node has seen (Kafka's observed stream time of the processor).
    var observed: Timestamp = .min
    var expiredUpTo: Timestamp = .min
    /// Emit-final: windows ending at or before this time have been forwarded.
    var emittedUpTo: Timestamp = .min

    init(name: String, children: [AnyObject], store: String, windows: TimeWindows, retention: Int64,
         emitFinal: Bool = false, step: @escaping AggregateStep<K, V, VR>) {
        self.storeName = store
        self.windows = windows
        self.retention = retention
        self.emitFinal = emitFinal
        self.step = step
        super.init(name: name, children: children)
    }
    /// The processor-metadata key of the emit-final progress (the store's name, as in Kafka).
    var progressKey: String { "emit-final:" + storeName }

    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskWindowStore<K, VR>).self, node: name)
        if emitFinal { accumulating = store as? PersistentTaskWindowStore<K, VR> }
        // A task created again (restart, rebalance) resumes from its committed stream time.
        if context.streamTime > observed { observed = context.streamTime }
        if emitFinal, let done = context.processorMetadata[progressKey] { emittedUpTo = done }
    }
    // The per-record path names no generic type (`Windowed<K>`, `Change<VR>`, `VR?`): in
    // unspecialised code each costs a metadata lookup on every call, wherever it is used in the
    // function, so the work that needs them lives in functions of its own.
    override func process(_ key: K, _ value: V) throws {
        let t = context.timestamp
        if t > observed {
            observed = t
            if emitFinal && observed - windows.grace > emittedUpTo { try emitClosedWindows() }
        }
        var late = false
        for start in windows.windowStarts(for: t) {
            if start + windows.size + windows.grace <= observed {
                late = true
                continue
            }
            if let accumulating {
                try accumulating.accumulate(key, windowStart: start) { try step(key, value, $0) }
            } else {
                try update(key, value, windowStart: start)
            }
        }
        if late { context.metrics.droppedLateRecords += 1 }
        if expiredUpTo == .min || observed - expiredUpTo >= windows.advance {
            expiredUpTo = observed
            try store.removeWindows(startingBefore: observed - retention + 1)
        }
    }

    /// Updates the window at `start` through the store's `update` and forwards the change
    /// unless the node emits final results only.
    @inline(never)
    private func update(_ key: K, _ value: V, windowStart start: Timestamp) throws {
        let (old, new) = try store.update(key, windowStart: start) { try step(key, value, $0) }
        if !emitFinal {
            try forward(Windowed(key: key, window: Window(start: start, end: start + windows.size)), Change(newValue: new, oldValue: old))
        }
    }

    /// Forwards the final aggregate of every window that closed since the last call: those
    /// ending in `(emittedUpTo, observed - grace]`. Cheap when no window boundary was crossed.
    @inline(never)
    private func emitClosedWindows() throws {
        let closedUpTo = observed - windows.grace
        guard closedUpTo > emittedUpTo else { return }
        // Window starts are multiples of `advance`: the latest closed window starts here.
        let (lastEnd, overflow) = closedUpTo.subtractingReportingOverflow(windows.size)
        guard !overflow, lastEnd >= 0 else { return }
        let lastStart = lastEnd - lastEnd % windows.advance
        // The first window not emitted yet ends after `emittedUpTo`: the first multiple of
        // `advance` above `emittedUpTo - size` (so the store reads no range without windows).
        var firstStart: Timestamp = 0
        if emittedUpTo != .min, emittedUpTo - windows.size >= 0 {
            let after = emittedUpTo - windows.size
            firstStart = after - after % windows.advance + windows.advance
        }
        guard lastStart >= firstStart else { return }
        if let accumulating {
            try accumulating.forEachWindow(from: firstStart, to: lastStart, older: forwardFinal) { window, keys, slots, entries in
                try forwardFinal(window, keys, slots, entries, deserializeKey: accumulating.deserializeKey)
            }
        } else {
            try forwardFinal(try store.fetchAll(from: firstStart, to: lastStart))
        }
        emittedUpTo = closedUpTo
        context.processorMetadata[progressKey] = closedUpTo
    }
    /// Forwards final results, each with the timestamp `end - 1` of its window.
    private func forwardFinal(_ results: [(key: Windowed<K>, value: VR)]) throws {
        for (windowed, aggregate) in results {
            try forward(windowed, Change(newValue: aggregate, oldValue: nil), timestamp: windowed.window.end - 1)
        }
        context.metrics.emittedFinalResults += results.count
    }
    /// Forwards the final results of one cached window: the whole window in one loop, so the
    /// generic types' metadata is looked up once per window rather than once per result.
    private func forwardFinal(_ window: Window, _ keys: [[UInt8]], _ slots: [Int], _ entries: WindowCache<VR>,
                              deserializeKey: ([UInt8]) throws -> K) throws {
        for j in keys.indices {
            try forward(Windowed(key: try deserializeKey(keys[j]), window: window),
                        Change(newValue: entries.value(atSlot: slots[j]), oldValue: nil), timestamp: window.end - 1)
        }
        context.metrics.emittedFinalResults += keys.count
    }
}

/// Aggregation over sliding windows (KIP-450). Keeps the records of each key that open
/// windows may still need, and recomputes every window the new record touches from those
/// records in timestamp order (so the result does not depend on arrival order).
final class SlidingWindowAggregateNode<K: Hashable, V, VR>: ProcessorNode<K, V, Windowed<K>, Change<VR>> {
    let storeName: String
    let windows: SlidingWindows
    let retention: Int64
    let step: AggregateStep<K, V, VR>
    var store: (any TaskWindowStore<K, VR>)! = nil
    var observed: Timestamp = .min
    var records: [K: [(time: Timestamp, value: V)]] = [:]
    var expiredUpTo: Timestamp = .min

    init(name: String, children: [AnyObject], store: String, windows: SlidingWindows, retention: Int64,
         step: @escaping AggregateStep<K, V, VR>) {
        self.storeName = store
        self.windows = windows
        self.retention = retention
        self.step = step
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskWindowStore<K, VR>).self, node: name)
        // A task created again (restart, rebalance) resumes from its committed stream time.
        if context.streamTime > observed { observed = context.streamTime }
    }
    private func isOpen(end: Timestamp) -> Bool { end + windows.grace >= observed }

    override func process(_ key: K, _ value: V) throws {
        let t = context.timestamp
        let d = windows.timeDifference
        if t > observed { observed = t }
        // The latest window that can contain t ends at t + d.
        guard isOpen(end: t + d) else {
            context.metrics.droppedLateRecords += 1
            return
        }
        var list = records[key] ?? []
        var i = list.count
        while i > 0 && list[i - 1].time > t { i -= 1 }
        list.insert((t, value), at: i)
        records[key] = list
        // Candidate windows [s, s + d] containing t, plus t's own right window.
        var starts: [Timestamp] = []
        for r in list where r.time >= t && r.time <= t + d { starts.append(max(0, r.time - d)) }  // left windows ([0, d] for early records)
        for r in list where r.time >= t - d && r.time < t { starts.append(r.time + 1) }         // right windows of earlier records
        let hasLater = list.contains { $0.time > t && $0.time <= t + d }
        if hasLater { starts.append(t + 1) }
        var seen = Set<Timestamp>()
        for s in starts.sorted() where seen.insert(s).inserted {
            let end = s + d
            guard isOpen(end: end) else { continue }
            var agg: VR? = nil
            for r in list where r.time >= s && r.time <= end { agg = try step(key, r.value, agg) }
            guard let new = agg else { continue }
            let old = try store.fetch(key, windowStart: s)
            let containsT = s <= t && t <= end
            if !containsT && old != nil { continue }
            try store.put(key, windowStart: s, new)
            try forward(Windowed(key: key, window: Window(start: s, end: end)), Change(newValue: new, oldValue: old))
        }
        if expiredUpTo == .min || observed - expiredUpTo >= d {
            expiredUpTo = observed
            let horizon = observed - windows.grace - 2 * d - 2
            for (k, l) in records {
                let kept = l.filter { $0.time >= horizon }
                records[k] = kept.isEmpty ? nil : kept
            }
            try store.removeWindows(startingBefore: observed - retention + 1)
        }
    }
}

/// Aggregation over session windows: merges the sessions a record bridges.
final class SessionWindowAggregateNode<K: Hashable, V, VR>: ProcessorNode<K, V, Windowed<K>, Change<VR>> {
    let storeName: String
    let windows: SessionWindows
    let retention: Int64
    let step: AggregateStep<K, V, VR>
    let merge: (K, VR, VR) throws -> VR
    var store: (any TaskSessionStore<K, VR>)! = nil
    var observed: Timestamp = .min
    var expiredUpTo: Timestamp = .min

    init(name: String, children: [AnyObject], store: String, windows: SessionWindows, retention: Int64,
         step: @escaping AggregateStep<K, V, VR>, merge: @escaping (K, VR, VR) throws -> VR) {
        self.storeName = store
        self.windows = windows
        self.retention = retention
        self.step = step
        self.merge = merge
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskSessionStore<K, VR>).self, node: name)
        // A task created again (restart, rebalance) resumes from its committed stream time.
        if context.streamTime > observed { observed = context.streamTime }
    }
    override func process(_ key: K, _ value: V) throws {
        let t = context.timestamp
        if t > observed { observed = t }
        let overlapping = try store.findSessions(key, earliestEnd: t - windows.inactivityGap,
                                                 latestStart: t + windows.inactivityGap)
        var merged = Window(start: t, end: t)
        var agg: VR? = nil
        for s in overlapping {
            merged = Window(start: min(merged.start, s.window.start), end: max(merged.end, s.window.end))
            agg = try agg.map { try merge(key, $0, s.value) } ?? s.value
        }
        if merged.end + windows.grace < observed {
            context.metrics.droppedLateRecords += 1
            return
        }
        var previousValueOfMerged: VR? = nil
        for s in overlapping {
            if s.window == merged {
                previousValueOfMerged = s.value
                continue
            }
            try store.remove(key, s.window)
            try forward(Windowed(key: key, window: s.window), Change(newValue: nil, oldValue: s.value))
        }
        let new = try step(key, value, agg)
        try store.put(key, merged, new)
        try forward(Windowed(key: key, window: merged), Change(newValue: new, oldValue: previousValueOfMerged))
        if expiredUpTo == .min || observed - expiredUpTo >= windows.inactivityGap {
            expiredUpTo = observed
            try store.removeSessions(endingBefore: observed - retention)
        }
    }
}

/// Turns a stream into a table: each record is an update of its key.
final class StreamToTableNode<K: Hashable, V>: ProcessorNode<K, V, K, Change<V>> {
    let storeName: String
    var store: (any TaskKeyValueStore<K, V>)! = nil
    init(name: String, children: [AnyObject], store: String) {
        self.storeName = store
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<K, V>).self, node: name)
    }
    override func process(_ key: K, _ value: V) throws {
        let old = try store.get(key)
        try store.put(key, value)
        try forward(key, Change(newValue: value, oldValue: old))
    }
}

/// `table.groupBy`: maps each update to the new grouping key. The old value is sent to the
/// old key (to be subtracted) and the new value to the new key (to be added): one record
/// when the keys are equal, two otherwise.
final class TableRegroupNode<K, V, KR: Hashable, VR>: ProcessorNode<K, Change<V>, KR, Change<VR>> {
    let selector: (K, V) throws -> (KR, VR)
    init(name: String, children: [AnyObject], selector: @escaping (K, V) throws -> (KR, VR)) {
        self.selector = selector
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let new = try change.newValue.map { try selector(key, $0) }
        let old = try change.oldValue.map { try selector(key, $0) }
        if let new, let old, new.0 == old.0 {
            try forward(new.0, Change(newValue: new.1, oldValue: old.1))
            return
        }
        if let old { try forward(old.0, Change(newValue: nil, oldValue: old.1)) }
        if let new { try forward(new.0, Change(newValue: new.1, oldValue: nil)) }
    }
}

/// Table aggregation with adder and subtractor.
final class TableAggregateNode<K: Hashable, V, VR>: ProcessorNode<K, Change<V>, K, Change<VR>> {
    let storeName: String
    let initializer: () throws -> VR
    let adder: (K, V, VR) throws -> VR
    let subtractor: (K, V, VR) throws -> VR
    var store: (any TaskKeyValueStore<K, VR>)! = nil
    init(name: String, children: [AnyObject], store: String, initializer: @escaping () throws -> VR,
         adder: @escaping (K, V, VR) throws -> VR, subtractor: @escaping (K, V, VR) throws -> VR) {
        self.storeName = store
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<K, VR>).self, node: name)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let old = try store.get(key)
        var agg = try old ?? initializer()
        if let o = change.oldValue { agg = try subtractor(key, o, agg) }
        if let n = change.newValue { agg = try adder(key, n, agg) }
        try store.put(key, agg)
        try forward(key, Change(newValue: agg, oldValue: old))
    }
}

/// Table reduce with adder and subtractor: like ``TableAggregateNode`` but a key with no
/// aggregate takes the first added value; a key whose last value is subtracted away keeps
/// the subtractor's result (as Kafka does).
final class TableReduceNode<K: Hashable, V>: ProcessorNode<K, Change<V>, K, Change<V>> {
    let storeName: String
    let adder: (V, V) throws -> V
    let subtractor: (V, V) throws -> V
    var store: (any TaskKeyValueStore<K, V>)! = nil
    init(name: String, children: [AnyObject], store: String, adder: @escaping (V, V) throws -> V,
         subtractor: @escaping (V, V) throws -> V) {
        self.storeName = store
        self.adder = adder
        self.subtractor = subtractor
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<K, V>).self, node: name)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let old = try store.get(key)
        var agg = old
        if let o = change.oldValue, let a = agg { agg = try subtractor(a, o) }
        if let n = change.newValue { agg = try agg.map { try adder($0, n) } ?? n }
        try store.put(key, agg)
        try forward(key, Change(newValue: agg, oldValue: old))
    }
}
