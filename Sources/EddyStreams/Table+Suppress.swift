import EddyCore

/// How ``Table/suppress(_:named:)`` holds a table's updates back (Kafka's `Suppressed`).
///
/// - ``untilWindowCloses``: only the final result of each window, once it closes (window end +
///   grace). For tables of windowed aggregations.
/// - ``untilTimeLimit(_:buffer:)``: at most one update per key per time limit (rate limiting).
///   For any table.
///
/// ```swift
/// counts.suppress(.untilTimeLimit(.seconds(30), buffer: .maximumRecords(10_000, .emitEarlyWhenFull)))
/// windowedCounts.suppress(.untilWindowCloses)
/// ```
public struct Suppression: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case windowClose
        case timeLimit(Duration)
    }
    let kind: Kind
    /// The limits of the buffer holding the updates back.
    public let buffer: SuppressionBufferLimits

    /// Only the final result of each window, once it closes (window end + grace; Kafka's
    /// `Suppressed.untilWindowCloses(unbounded())`), with an unbounded buffer. Results come out
    /// in order of close time, then key bytes, when the node's stream time reaches the close
    /// time; an update of a window that has already closed is passed on at once.
    public static var untilWindowCloses: Suppression { Suppression(kind: .windowClose, buffer: .unbounded) }

    /// ``untilWindowCloses`` with a bounded buffer, which must shut down when full
    /// (``SuppressionBufferLimits/FullStrategy/shutDownWhenFull``, Kafka's `StrictBufferConfig`):
    /// emitting early would send results that are not final, so the builder refuses
    /// ``SuppressionBufferLimits/FullStrategy/emitEarlyWhenFull`` here.
    public static func untilWindowCloses(_ buffer: SuppressionBufferLimits) -> Suppression {
        Suppression(kind: .windowClose, buffer: buffer)
    }

    /// Rate limiting (Kafka's `Suppressed.untilTimeLimit(timeToWaitForMoreEvents, bufferConfig)`):
    /// each key's updates are held back, and at most one update per key comes out per `limit`
    /// of stream time.
    ///
    /// The first update of a key that is not buffered sets the key's emit time to that record's
    /// timestamp + `limit`; later updates of the key before then replace its new value,
    /// timestamp and headers but keep the first update's old value, so what comes out is the
    /// change from the value before the first update to the latest one (an update that leaves
    /// nothing to change, such as a row created and deleted within one hold, is dropped). Held
    /// updates come out in order of emit time, then key bytes (first-update order when the key
    /// has no serde), with the latest update's timestamp and headers, once the node's stream time
    /// (the largest record timestamp it has seen, kept in the buffer store) reaches their emit
    /// time. Stream time moves only with records: without new input nothing comes out.
    /// `.zero` holds nothing back beyond the record itself. `limit` counts whole milliseconds
    /// (finer parts are dropped) and must not be negative.
    ///
    /// `buffer` bounds the number of held keys and/or their bytes; see ``SuppressionBufferLimits``
    /// for what happens when it is full.
    public static func untilTimeLimit(_ limit: Duration, buffer: SuppressionBufferLimits = .unbounded) -> Suppression {
        Suppression(kind: .timeLimit(limit), buffer: buffer)
    }
}

/// The limits of a suppression buffer (Kafka's `Suppressed.BufferConfig`): the most updates
/// (keys) and/or bytes it may hold, and what happens when an update takes it over a limit.
///
/// The limits are checked after each record has been buffered and the due updates emitted. The
/// bytes of a held update are the bytes its store entry takes (close time, serialised key,
/// timestamp, serialised new and old values and headers), so a byte limit needs the table's key
/// and value serdes; the builder reports an error otherwise.
public struct SuppressionBufferLimits: Sendable, Hashable {
    /// What a full buffer does.
    public enum FullStrategy: Sendable, Hashable {
        /// Emits the held updates that come out first (earliest emit time, then key) until the
        /// buffer is within its limits again. The table downstream then sees more than one
        /// update per key per time limit, never a wrong one.
        case emitEarlyWhenFull
        /// Fails the task with an `EddyError` (`invalidState`) naming the store, the limit and
        /// the buffer's size. Like any processing error it is handled by the application's
        /// `processingErrorHandler` (`.fail`, the default, stops the thread).
        case shutDownWhenFull
    }
    /// The most updates (one per key) the buffer holds; `nil`: no limit. At least 1.
    public var maximumRecords: Int?
    /// The most bytes the buffer's updates take; `nil`: no limit. At least 1.
    public var maximumBytes: Int?
    /// What happens when an update takes the buffer over a limit.
    public var whenFull: FullStrategy

    /// Limits of `maximumRecords` updates and/or `maximumBytes` bytes (`nil`: no limit).
    public init(maximumRecords: Int? = nil, maximumBytes: Int? = nil, whenFull: FullStrategy) {
        self.maximumRecords = maximumRecords
        self.maximumBytes = maximumBytes
        self.whenFull = whenFull
    }

    /// No limit (Kafka's `BufferConfig.unbounded()`): the buffer grows with the number of keys.
    public static let unbounded = SuppressionBufferLimits(whenFull: .shutDownWhenFull)

    /// At most `count` held updates (Kafka's `BufferConfig.maxRecords(count)`).
    public static func maximumRecords(_ count: Int, _ whenFull: FullStrategy) -> SuppressionBufferLimits {
        SuppressionBufferLimits(maximumRecords: count, whenFull: whenFull)
    }

    /// At most `bytes` bytes of held updates (Kafka's `BufferConfig.maxBytes(bytes)`).
    public static func maximumBytes(_ bytes: Int, _ whenFull: FullStrategy) -> SuppressionBufferLimits {
        SuppressionBufferLimits(maximumBytes: bytes, whenFull: whenFull)
    }

    /// Whether any limit is set.
    var isBounded: Bool { maximumRecords != nil || maximumBytes != nil }

    /// The problems with these limits, for the builder's errors.
    func problems(_ operation: String) -> [String] {
        var problems: [String] = []
        if let n = maximumRecords, n < 1 { problems.append("\(operation): maximumRecords is \(n); it must be at least 1") }
        if let n = maximumBytes, n < 1 { problems.append("\(operation): maximumBytes is \(n); it must be at least 1") }
        return problems
    }
}

/// The keys of windowed tables, whose close time follows from the key alone.
protocol WindowedKey {
    var window: Window { get }
}
extension Windowed: WindowedKey {}

extension Table {
    /// Holds back the table's updates and sends them on later, as `suppression` says (Kafka's
    /// `KTable.suppress`): ``Suppression/untilWindowCloses`` sends each window's final result
    /// once it closes (only for tables of windowed aggregations; on others the builder reports
    /// an error), ``Suppression/untilTimeLimit(_:buffer:)`` at most one update per key per time
    /// limit. A stateful record-by-record operation; what it sends has the timestamp and headers
    /// of the latest update it replaces.
    ///
    /// The held-back updates live in a buffer store named `<named>-store` (or
    /// `KTABLE-SUPPRESS-STATE-STORE-<n>`), together with the node's stream time. It is persistent
    /// and logged to `<application>-<store>-changelog` when the table's serdes are known, so each
    /// update is sent exactly once across restarts and task migrations; otherwise it is in memory.
    /// Each held key costs memory until it is sent (the persistent buffer mirrors its store in
    /// memory too); bound it with ``SuppressionBufferLimits``.
    ///
    /// The returned table's ``storeName`` is this table's store: it holds the latest values,
    /// not the suppressed ones.
    ///
    /// ```swift
    /// builder.table("prices", key: Serdes.string, value: Serdes.int64)
    ///     .suppress(.untilTimeLimit(.seconds(10)), named: "price-limit")
    ///     .toStream()
    ///     .to("prices-every-10s", key: Serdes.string, value: Serdes.optional(Serdes.int64))
    /// ```
    public func suppress(_ suppression: Suppression, named: String? = nil) -> Table<K, V> {
        let errors = suppression.buffer.problems("suppress")
        guard errors.isEmpty else {
            builder.errors += errors
            return self
        }
        switch suppression.kind {
        case .windowClose:
            guard windowClose != nil, let windowed = K.self as? any WindowedKey.Type else {
                builder.errors.append("suppress(untilWindowCloses) needs a table from a windowed aggregation")
                return self
            }
            return suppressUntilWindowCloses(named: named, buffer: suppression.buffer) { delay in Self.closeTime(windowed, delay: delay) }
        case .timeLimit(let limit):
            guard limit >= .zero else {
                builder.errors.append("suppress(untilTimeLimit): the time limit is \(limit); it must not be negative")
                return self
            }
            let (seconds, attoseconds) = limit.components
            let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
            let limitMilliseconds = overflow ? Int64.max : milliseconds.addingClamped(attoseconds / 1_000_000_000_000_000)
            return addSuppression(named: named, buffer: suppression.buffer, mode: .timeLimit(milliseconds: limitMilliseconds))
        }
    }

    /// `{ key in key.window.end + delay }` for a table whose key type is `W` at run time: opened
    /// once here, so no record pays for a cast.
    static func closeTime<W: WindowedKey>(_ type: W.Type, delay: Int64) -> (K) -> Timestamp {
        let close: (W) -> Timestamp = { $0.window.end + delay }
        // K is W (the caller's cast said so), so this cast of the function itself succeeds.
        return close as! (K) -> Timestamp
    }

    /// Emit-final for a table of a windowed aggregation (also ``GroupedStream``'s
    /// `emit(.onWindowClose)`), with an unbounded buffer.
    func suppressUntilWindowCloses<Inner: Hashable>(named: String? = nil) -> Table<K, V> where K == Windowed<Inner> {
        guard windowClose != nil else {
            builder.errors.append("suppress(untilWindowCloses) needs a table from a windowed aggregation")
            return self
        }
        return suppressUntilWindowCloses(named: named, buffer: .unbounded) { delay in { $0.window.end + delay } }
    }

    /// `closeTime(grace + close offset)` gives a key's close time.
    private func suppressUntilWindowCloses(named: String?, buffer: SuppressionBufferLimits,
                                           closeTime: (Int64) -> (K) -> Timestamp) -> Table<K, V> {
        guard let (grace, offset) = windowClose else { return self }
        if buffer.isBounded && buffer.whenFull == .emitEarlyWhenFull {
            builder.errors.append("suppress(untilWindowCloses) takes only buffer limits that shut down when full (.shutDownWhenFull): emitting early would send results that are not final")
            return self
        }
        return addSuppression(named: named, buffer: buffer, mode: .windowClose(closeTime(grace + offset)))
    }

    private func addSuppression(named: String?, buffer limits: SuppressionBufferLimits, mode: SuppressNode<K, V>.Mode) -> Table<K, V> {
        let n = builder.name("KTABLE-SUPPRESS", named)
        let store = named.map { $0 + "-store" } ?? "KTABLE-SUPPRESS-STATE-STORE-" + n.suffix(10)
        let measuresBytes = limits.maximumBytes != nil
        if measuresBytes && (keySerde == nil || valueSerde == nil) {
            builder.errors.append("suppress '\(n)': a buffer limit in bytes needs the table's key and value serdes, to measure the held updates")
            return self
        }
        let keySerde = self.keySerde
        let valueSerde = self.valueSerde
        builder.addStore(store, kind: .keyValue,
                         persistent: StorePersistence.suppressionBuffer(store, keySerde, valueSerde, measuresBytes: measuresBytes)) {
            InMemorySuppressionBuffer<K, V>(name: store, keySerde: keySerde, valueSerde: measuresBytes ? valueSerde : nil)
        }
        builder.addNode(n, kind: .processor, parents: [node], stores: [store]) {
            SuppressNode<K, V>(name: n, children: $0, store: store, mode: mode, limits: limits)
        }
        return Table(builder: builder, node: n, store: storeName, keySerde: keySerde, valueSerde: valueSerde,
                     partitioningTopics: partitioningTopics, windowClose: windowClose)
    }
}

private extension Int64 {
    /// `self + other`, held at `Int64.max` / `Int64.min` instead of overflowing.
    func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
