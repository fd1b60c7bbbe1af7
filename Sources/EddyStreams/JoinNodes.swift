import EddyCore

/// The window of a stream–stream join: a record at `t` on the left joins right records with
/// timestamps in `[t - before, t + after]` (and a right record at `t` joins left records in
/// `[t - after, t + before]`). Records later than `grace` after their window's end are dropped.
public struct JoinWindows: Hashable, Sendable {
    /// How far back from a left record's timestamp right records join, in milliseconds.
    public let before: Int64
    /// How far ahead of a left record's timestamp right records join, in milliseconds.
    public let after: Int64
    /// How long after a window's end records are still accepted, in milliseconds.
    public let grace: Int64
    /// Records at most `timeDifference` apart join; `grace` defaults to 0.
    public static func of(timeDifference: Int64, grace: Int64 = 0) -> JoinWindows {
        precondition(timeDifference >= 0 && grace >= 0, "join windows need non-negative durations")
        return JoinWindows(before: timeDifference, after: timeDifference, grace: grace)
    }
    /// The same windows reaching `before` milliseconds back from a left record.
    public func before(_ before: Int64) -> JoinWindows {
        precondition(before >= 0)
        return JoinWindows(before: before, after: after, grace: grace)
    }
    /// The same windows reaching `after` milliseconds ahead of a left record.
    public func after(_ after: Int64) -> JoinWindows {
        precondition(after >= 0)
        return JoinWindows(before: before, after: after, grace: grace)
    }
}

/// Which records of a join produce output without a partner.
enum JoinKind: Sendable {
    case inner, left, outer
}

/// The state both sides of one stream–stream join share in a task: the records of each side
/// within the join window, the unmatched records waiting for their window to close (left and
/// outer joins), and the join's stream time.
final class StreamJoinState<K: Hashable, V1, V2>: TaskStore {
    let name: String
    var left: [K: [(time: Timestamp, value: V1)]] = [:]
    var right: [K: [(time: Timestamp, value: V2)]] = [:]
    /// Unmatched records ordered by (close time, arrival); each entry is removed when joined.
    struct Unmatched {
        var key: K
        var time: Timestamp
        var closeTime: Timestamp
        var leftValue: V1?
        var rightValue: V2?
        var sequence: Int
        var matched = false
    }
    var unmatched: [Unmatched] = []
    var sequence = 0
    var streamTime: Timestamp = .min
    var expiredUpTo: Timestamp = .min

    init(name: String) { self.name = name }
    func flush() throws {}
    func close() {}
}

/// One side of a stream–stream join. `isLeft` tells which; the joiner gets (left, right).
final class StreamStreamJoinNode<K: Hashable, V1, V2, VR, VIn>: ProcessorNode<K, VIn, K, VR> {
    let storeName: String
    let windows: JoinWindows
    let kind: JoinKind
    let isLeft: Bool
    let joiner: (K, V1?, V2?) throws -> VR
    /// Identity conversions of the input value to this side's type, given where the types are
    /// known (avoids a dynamic cast per record).
    let asLeft: ((VIn) -> V1)?
    let asRight: ((VIn) -> V2)?
    var state: StreamJoinState<K, V1, V2>! = nil

    init(name: String, children: [AnyObject], store: String, windows: JoinWindows, kind: JoinKind,
         asLeft: ((VIn) -> V1)?, asRight: ((VIn) -> V2)?, joiner: @escaping (K, V1?, V2?) throws -> VR) {
        self.asLeft = asLeft
        self.asRight = asRight
        self.isLeft = asLeft != nil
        self.storeName = store
        self.windows = windows
        self.kind = kind
        self.joiner = joiner
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        state = try context.store(storeName, as: StreamJoinState<K, V1, V2>.self, node: name)
    }

    /// Whether unmatched records of this side are emitted at window close.
    var emitsUnmatched: Bool { kind == .outer || (kind == .left && isLeft) }

    override func process(_ key: K, _ value: VIn) throws {
        let t = context.timestamp
        let lookAhead = isLeft ? windows.after : windows.before
        let lookBack = isLeft ? windows.before : windows.after
        if t + lookAhead + windows.grace < state.streamTime {
            context.metrics.droppedLateRecords += 1
            return
        }
        if t >= state.streamTime {
            state.streamTime = t
            try emitClosedUnmatched()
        }
        var matched = false
        if let asLeft {
            let v = asLeft(value)
            state.left[key, default: []].append((t, v))
            for other in state.right[key] ?? [] where other.time >= t - lookBack && other.time <= t + lookAhead {
                matched = true
                removeUnmatched(key: key, time: other.time, fromLeft: false)
                try forward(key, try joiner(key, v, other.value), timestamp: max(t, other.time))
            }
            if !matched && emitsUnmatched { addUnmatched(key: key, time: t, left: v, right: nil, lookAhead: lookAhead) }
        } else if let asRight {
            let v = asRight(value)
            state.right[key, default: []].append((t, v))
            for other in state.left[key] ?? [] where other.time >= t - lookBack && other.time <= t + lookAhead {
                matched = true
                removeUnmatched(key: key, time: other.time, fromLeft: true)
                try forward(key, try joiner(key, other.value, v), timestamp: max(t, other.time))
            }
            if !matched && emitsUnmatched { addUnmatched(key: key, time: t, left: nil, right: v, lookAhead: lookAhead) }
        }
        expire()
    }

    private func addUnmatched(key: K, time: Timestamp, left: V1?, right: V2?, lookAhead: Int64) {
        let close = time + lookAhead + windows.grace
        state.sequence += 1
        let entry = StreamJoinState<K, V1, V2>.Unmatched(key: key, time: time, closeTime: close, leftValue: left,
                                                         rightValue: right, sequence: state.sequence)
        var i = state.unmatched.count
        while i > 0 && state.unmatched[i - 1].closeTime > close { i -= 1 }
        state.unmatched.insert(entry, at: i)
    }

    private func removeUnmatched(key: K, time: Timestamp, fromLeft: Bool) {
        for i in state.unmatched.indices where !state.unmatched[i].matched {
            let u = state.unmatched[i]
            if u.key == key && u.time == time && (u.leftValue != nil) == fromLeft { state.unmatched[i].matched = true }
        }
    }

    /// Emits unmatched records whose window has closed (`time + lookAhead + grace < streamTime`),
    /// in order of close time, with their own timestamps.
    private func emitClosedUnmatched() throws {
        var n = 0
        while n < state.unmatched.count, state.unmatched[n].closeTime < state.streamTime {
            let u = state.unmatched[n]
            n += 1
            if u.matched { continue }
            try forward(u.key, try joiner(u.key, u.leftValue, u.rightValue), timestamp: u.time)
        }
        if n > 0 { state.unmatched.removeFirst(n) }
    }

    /// Drops buffered records that no future record can join.
    private func expire() {
        let now = state.streamTime
        guard state.expiredUpTo == .min || now - state.expiredUpTo > windows.before + windows.after else { return }
        state.expiredUpTo = now
        let horizon = now - windows.before - windows.after - windows.grace - 1
        for (k, list) in state.left {
            let kept = list.filter { $0.time >= horizon }
            state.left[k] = kept.isEmpty ? nil : kept
        }
        for (k, list) in state.right {
            let kept = list.filter { $0.time >= horizon }
            state.right[k] = kept.isEmpty ? nil : kept
        }
    }
}

/// Stream–table join: each stream record looks up the table's current value for its key
/// (or for the key `keySelector` computes, for global tables). Table updates emit nothing.
final class StreamTableJoinNode<K, V, KT: Hashable, VT, VR>: ProcessorNode<K, V, K, VR> {
    let storeName: String
    let keySelector: (K, V) throws -> KT?
    let isLeft: Bool
    let joiner: (K, V, VT?) throws -> VR
    var store: (any TaskKeyValueStore<KT, VT>)! = nil

    init(name: String, children: [AnyObject], store: String, isLeft: Bool,
         keySelector: @escaping (K, V) throws -> KT?, joiner: @escaping (K, V, VT?) throws -> VR) {
        self.storeName = store
        self.isLeft = isLeft
        self.keySelector = keySelector
        self.joiner = joiner
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<KT, VT>).self, node: name)
    }
    override func process(_ key: K, _ value: V) throws {
        guard let lookup = try keySelector(key, value) else {
            if isLeft { try forward(key, try joiner(key, value, nil)) } else { context.metrics.skippedNullRecords += 1 }
            return
        }
        let found = try store.get(lookup)
        if found == nil && !isLeft { return }
        try forward(key, try joiner(key, value, found))
    }
}

/// One side of a table–table join: on an update of its side, recomputes the key's join result
/// from both tables' current values, materialises it and forwards the change. Nothing is sent
/// when the result was and stays absent.
final class TableTableJoinNode<K: Hashable, V1, V2, VR, VIn>: ProcessorNode<K, Change<VIn>, K, Change<VR>> {
    let leftStoreName: String
    let rightStoreName: String
    let resultStoreName: String
    let kind: JoinKind
    let joiner: (V1?, V2?) throws -> VR
    var leftStore: (any TaskKeyValueStore<K, V1>)! = nil
    var rightStore: (any TaskKeyValueStore<K, V2>)! = nil
    var resultStore: (any TaskKeyValueStore<K, VR>)! = nil

    init(name: String, children: [AnyObject], left: String, right: String, result: String, kind: JoinKind,
         joiner: @escaping (V1?, V2?) throws -> VR) {
        self.leftStoreName = left
        self.rightStoreName = right
        self.resultStoreName = result
        self.kind = kind
        self.joiner = joiner
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        leftStore = try context.store(leftStoreName, as: (any TaskKeyValueStore<K, V1>).self, node: name)
        rightStore = try context.store(rightStoreName, as: (any TaskKeyValueStore<K, V2>).self, node: name)
        resultStore = try context.store(resultStoreName, as: (any TaskKeyValueStore<K, VR>).self, node: name)
    }
    override func process(_ key: K, _ change: Change<VIn>) throws {
        let l = try leftStore.get(key)
        let r = try rightStore.get(key)
        let new: VR?
        switch kind {
        case .inner: new = (l != nil && r != nil) ? try joiner(l, r) : nil
        case .left: new = l != nil ? try joiner(l, r) : nil
        case .outer: new = (l != nil || r != nil) ? try joiner(l, r) : nil
        }
        let old = try resultStore.get(key)
        if new == nil && old == nil { return }
        try resultStore.put(key, new)
        try forward(key, Change(newValue: new, oldValue: old))
    }
}
