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

/// One side of a stream–stream join. `isLeft` tells which; the joiner gets (left, right).
///
/// State lives in stores (``JoinSideStore`` per side, ``OuterJoinStore`` for left and outer
/// joins), so it is persistent and changelogged like any other store. The join's stream time
/// is the larger of the two side stores' observed stream times: every record that is not
/// dropped as late is put into its side's store, and the stores restore that time with their
/// contents, so a restarted task resumes with the same stream time.
final class StreamStreamJoinNode<K: Hashable, V1, V2, VR, VIn>: ProcessorNode<K, VIn, K, VR> {
    let leftStoreName: String
    let rightStoreName: String
    let outerStoreName: String?
    let windows: JoinWindows
    let kind: JoinKind
    let isLeft: Bool
    let joiner: (K, V1?, V2?) throws -> VR
    /// Identity conversions of the input value to this side's type, given where the types are
    /// known (avoids a dynamic cast per record).
    let asLeft: ((VIn) -> V1)?
    let asRight: ((VIn) -> V2)?
    var leftStore: (any JoinSideStore<K, V1>)! = nil
    var rightStore: (any JoinSideStore<K, V2>)! = nil
    var outerStore: (any OuterJoinStore<K, V1, V2>)? = nil
    /// Stream time of the last expiry of in-memory side stores.
    var expiredUpTo: Timestamp = .min

    init(name: String, children: [AnyObject], leftStore: String, rightStore: String, outerStore: String?,
         windows: JoinWindows, kind: JoinKind,
         asLeft: ((VIn) -> V1)?, asRight: ((VIn) -> V2)?, joiner: @escaping (K, V1?, V2?) throws -> VR) {
        self.asLeft = asLeft
        self.asRight = asRight
        self.isLeft = asLeft != nil
        self.leftStoreName = leftStore
        self.rightStoreName = rightStore
        self.outerStoreName = outerStore
        self.windows = windows
        self.kind = kind
        self.joiner = joiner
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        leftStore = try context.store(leftStoreName, as: (any JoinSideStore<K, V1>).self, node: name)
        rightStore = try context.store(rightStoreName, as: (any JoinSideStore<K, V2>).self, node: name)
        if let outerStoreName {
            outerStore = try context.store(outerStoreName, as: (any OuterJoinStore<K, V1, V2>).self, node: name)
        }
    }

    /// Whether unmatched records of this side are emitted at window close.
    var emitsUnmatched: Bool { kind == .outer || (kind == .left && isLeft) }
    /// Whether unmatched records of the other side are emitted at window close.
    var otherEmitsUnmatched: Bool { kind == .outer || (kind == .left && !isLeft) }

    override func process(_ key: K, _ value: VIn) throws {
        let t = context.timestamp
        let lookAhead = isLeft ? windows.after : windows.before
        let lookBack = isLeft ? windows.before : windows.after
        let streamTime = max(leftStore.observedStreamTime, rightStore.observedStreamTime)
        if t + lookAhead + windows.grace < streamTime {
            context.metrics.droppedLateRecords += 1
            return
        }
        if t >= streamTime, let outerStore { try emitClosedUnmatched(outerStore, before: t) }
        var matched = false
        // The other side's records close at their time + the other side's look-ahead + grace.
        let otherCloseOffset = lookBack + windows.grace
        var lastRemoved: Timestamp? = nil
        if let asLeft {
            let v = asLeft(value)
            try leftStore.put(key, time: t, v)
            for other in try rightStore.fetch(key, from: t - lookBack, to: t + lookAhead) {
                matched = true
                if otherEmitsUnmatched, lastRemoved != other.time, let outerStore {
                    try outerStore.remove(key, time: other.time, closeTime: other.time + otherCloseOffset, side: .right)
                    lastRemoved = other.time
                }
                try forward(key, try joiner(key, v, other.value), timestamp: max(t, other.time))
            }
            if !matched && emitsUnmatched, let outerStore {
                try outerStore.add(key, time: t, closeTime: t + lookAhead + windows.grace, left: v, right: nil)
            }
        } else if let asRight {
            let v = asRight(value)
            try rightStore.put(key, time: t, v)
            for other in try leftStore.fetch(key, from: t - lookBack, to: t + lookAhead) {
                matched = true
                if otherEmitsUnmatched, lastRemoved != other.time, let outerStore {
                    try outerStore.remove(key, time: other.time, closeTime: other.time + otherCloseOffset, side: .left)
                    lastRemoved = other.time
                }
                try forward(key, try joiner(key, other.value, v), timestamp: max(t, other.time))
            }
            if !matched && emitsUnmatched, let outerStore {
                try outerStore.add(key, time: t, closeTime: t + lookAhead + windows.grace, left: nil, right: v)
            }
        }
        try expire(streamTime: max(t, streamTime))
    }

    /// Emits unmatched records whose window has closed (close time before `time`), in the
    /// outer store's order, with their own timestamps.
    private func emitClosedUnmatched(_ outerStore: any OuterJoinStore<K, V1, V2>, before time: Timestamp) throws {
        for u in try outerStore.takeClosed(before: time) {
            try forward(u.key, try joiner(u.key, u.left, u.right), timestamp: u.time)
        }
    }

    /// Drops buffered records that no future record can join (persistent stores ignore this:
    /// their retention drops whole segments).
    private func expire(streamTime now: Timestamp) throws {
        guard expiredUpTo == .min || now - expiredUpTo > windows.before + windows.after else { return }
        expiredUpTo = now
        let horizon = now - windows.before - windows.after - windows.grace - 1
        try leftStore.expire(before: horizon)
        try rightStore.expire(before: horizon)
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
