import EddyCore

/// Emit-final for windowed tables (Kafka's `suppress(untilWindowCloses)`): holds the latest
/// update of each window in a ``SuppressionBuffer`` and forwards it once stream time (the
/// largest timestamp seen by this node) reaches `end + closeOffset + grace`, in order of close
/// time, then key. `closeOffset` is 1 for windows with an inclusive end (sliding, session), 0
/// otherwise.
///
/// The buffer is a store: persistent and changelogged like the aggregate it follows, and it
/// keeps the node's stream time too, so a restarted or migrated task emits every final result
/// exactly once, at the same point of the input as an uninterrupted run would.
final class SuppressNode<K: Hashable, V>: ProcessorNode<Windowed<K>, Change<V>, Windowed<K>, Change<V>> {
    let storeName: String
    let grace: Int64
    let closeOffset: Int64
    var buffer: (any SuppressionBuffer<Windowed<K>, V>)! = nil

    init(name: String, children: [AnyObject], store: String, grace: Int64, closeOffset: Int64) {
        self.storeName = store
        self.grace = grace
        self.closeOffset = closeOffset
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        buffer = try context.store(storeName, as: (any SuppressionBuffer<Windowed<K>, V>).self, node: name)
    }
    override func process(_ key: Windowed<K>, _ change: Change<V>) throws {
        let t = context.timestamp
        var observed = try buffer.observedStreamTime()
        if t > observed {
            observed = t
            try buffer.setObservedStreamTime(t)
        }
        let close = key.window.end + closeOffset + grace
        if close <= observed {
            // Already closed (possible when several windows close on one record): pass on.
            try forward(key, change)
        } else {
            try buffer.buffer(key, closeTime: close, change: change, timestamp: t, headers: context.headers)
        }
        try emitClosed(upTo: observed)
    }
    private func emitClosed(upTo observed: Timestamp) throws {
        let closed = try buffer.takeClosed(upTo: observed)
        guard !closed.isEmpty else { return }
        let savedHeaders = context.headers
        defer { context.headers = savedHeaders }
        for (key, e) in closed where !(e.change.newValue == nil && e.change.oldValue == nil) {
            context.headers = e.headers
            try forward(key, e.change, timestamp: e.timestamp)
        }
    }
}
