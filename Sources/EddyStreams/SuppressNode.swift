import EddyCore

/// Kafka's `KTableSuppressProcessor`: holds each key's latest update in a
/// ``SuppressionBuffer`` and forwards it once the node's stream time (the largest timestamp it
/// has seen) reaches the update's emit time, in order of emit time, then key.
///
/// - ``Mode/windowClose(_:)``: emit-final for windowed tables (`suppress(untilWindowCloses)`);
///   the emit time is the window's close time, `end + closeOffset + grace`, from the key alone.
///   `closeOffset` is 1 for windows with an inclusive end (sliding, session), 0 otherwise. An
///   update of a window already closed is passed on at once.
/// - ``Mode/timeLimit(milliseconds:)``: rate limiting (`suppress(untilTimeLimit)`); the first
///   buffered update of a key sets its emit time to its timestamp + the limit, later ones keep it.
///
/// After each record the node enforces its ``SuppressionBufferLimits``: it emits the first
/// updates early, or throws.
///
/// The buffer is a store: persistent and changelogged like the table it follows, and it keeps
/// the node's stream time too, so a restarted or migrated task emits every update exactly
/// once, at the same point of the input as an uninterrupted run would.
final class SuppressNode<K: Hashable, V>: ProcessorNode<K, Change<V>, K, Change<V>> {
    enum Mode {
        /// Emit time = the window's close time, computed from the key.
        case windowClose((K) -> Timestamp)
        /// Emit time = the first buffered update's timestamp + `milliseconds`.
        case timeLimit(milliseconds: Int64)
    }
    let storeName: String
    let mode: Mode
    let limits: SuppressionBufferLimits
    var buffer: (any SuppressionBuffer<K, V>)! = nil

    init(name: String, children: [AnyObject], store: String, mode: Mode, limits: SuppressionBufferLimits) {
        self.storeName = store
        self.mode = mode
        self.limits = limits
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        buffer = try context.store(storeName, as: (any SuppressionBuffer<K, V>).self, node: name)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let t = context.timestamp
        var observed = try buffer.observedStreamTime()
        if t > observed {
            observed = t
            try buffer.setObservedStreamTime(t)
        }
        switch mode {
        case .windowClose(let closeTime):
            let close = closeTime(key)
            if close <= observed {
                // Already closed (possible when several windows close on one record): pass on.
                try forward(key, change)
            } else {
                try buffer.buffer(key, emitTime: close, change: change, timestamp: t, headers: context.headers)
            }
        case .timeLimit(let milliseconds):
            // Buffered even when already due: a held update of the key must absorb it, and an
            // unheld one comes out below, in order.
            let (sum, overflow) = t.addingReportingOverflow(milliseconds)
            try buffer.buffer(key, emitTime: overflow ? .max : sum, change: change, timestamp: t, headers: context.headers)
        }
        try emit(try buffer.takeDue(upTo: observed))
        if limits.isBounded { try enforceLimits() }
    }

    /// Over a limit: emits the first updates until within it, or throws.
    private func enforceLimits() throws {
        while try isOverLimit() {
            switch limits.whenFull {
            case .emitEarlyWhenFull:
                guard let first = try buffer.takeFirst() else { return }
                try emit([first])
            case .shutDownWhenFull:
                let records = try buffer.recordCount()
                let bytes = limits.maximumBytes == nil ? "" : " and \(try buffer.byteCount()) bytes"
                throw EddyError(.invalidState, "suppression buffer '\(storeName)' of \(name) is over its limit of \(describeLimits()): it holds \(records) records\(bytes) (shutDownWhenFull)")
            }
        }
    }

    private func isOverLimit() throws -> Bool {
        if let maximum = limits.maximumRecords, try buffer.recordCount() > maximum { return true }
        if let maximum = limits.maximumBytes, try buffer.byteCount() > maximum { return true }
        return false
    }

    private func describeLimits() -> String {
        [limits.maximumRecords.map { "\($0) records" }, limits.maximumBytes.map { "\($0) bytes" }]
            .compactMap { $0 }.joined(separator: " and ")
    }

    /// Forwards `updates` with their own timestamps and headers. An update that changes nothing
    /// (no old value, no new value: created and deleted while held) is dropped.
    private func emit(_ updates: [(key: K, entry: BufferedChange<V>)]) throws {
        guard !updates.isEmpty else { return }
        let savedHeaders = context.headers
        defer { context.headers = savedHeaders }
        for (key, e) in updates where !(e.change.newValue == nil && e.change.oldValue == nil) {
            context.headers = e.headers
            try forward(key, e.change, timestamp: e.timestamp)
        }
    }
}
