import EddyCore

/// A record as a user ``Processor`` sees and forwards it.
public struct StreamRecord<Key, Value> {
    /// The record's key.
    public var key: Key
    /// The record's value.
    public var value: Value
    /// The record's event time, in milliseconds since the epoch.
    public var timestamp: Timestamp
    /// The record's headers.
    public var headers: [Header]
    /// A record to forward.
    public init(key: Key, value: Value, timestamp: Timestamp, headers: [Header] = []) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
    }
}

/// A user processor (the Processor API): for what the DSL cannot say. One instance per task,
/// created by the closure given to ``Stream/process(named:stores:_:)``; all calls come from
/// the task's thread, so the processor needs no locks.
///
/// Lifecycle: `initialize` once (look up stores, schedule punctuators), `process` per record,
/// `close` once.
public protocol Processor<InKey, InValue, OutKey, OutValue>: AnyObject {
    associatedtype InKey
    associatedtype InValue
    associatedtype OutKey
    associatedtype OutValue
    /// Called once before the first record.
    func initialize(_ context: ProcessorContext<OutKey, OutValue>) throws
    /// Called for each record; may forward any number of records through the context.
    func process(_ record: StreamRecord<InKey, InValue>) throws
    /// Called once when the task closes.
    func close()
}

extension Processor {
    /// Does nothing: processors without resources need not implement `close`.
    public func close() {}
}

/// What a user ``Processor`` can do: forward records, read the current record's metadata,
/// use its stores, and schedule punctuators. Valid on the task's thread while the task runs.
public final class ProcessorContext<Key, Value> {
    unowned(unsafe) let task: TaskContext
    let node: String
    let downstream: Downstream<Key, Value>

    init(task: TaskContext, node: String, downstream: Downstream<Key, Value>) {
        self.task = task
        self.node = node
        self.downstream = downstream
    }

    /// The task this processor instance belongs to.
    public var taskID: TaskID { task.taskID }
    /// The application id (the test driver's, or the runtime's).
    public var applicationID: String { task.applicationID }
    /// The current record's topic, partition, offset, timestamp and headers.
    public var recordContext: RecordContext { task.recordContext }
    /// The largest record timestamp the task has processed (`Int64.min` before the first).
    public var streamTime: Timestamp { task.streamTime }
    /// Wall-clock milliseconds as the driver or the stream thread last set them.
    public var wallClockTime: Int64 { task.wallClockTime }

    /// Passes `record` to every child of this processor, with its timestamp and headers.
    public func forward(_ record: StreamRecord<Key, Value>) throws {
        let savedTime = task.timestamp, savedHeaders = task.headers
        task.timestamp = record.timestamp
        task.headers = record.headers
        defer { task.timestamp = savedTime; task.headers = savedHeaders }
        try downstream.forward(record.key, record.value)
    }

    /// The key-value store `name`, which must be connected to this processor.
    public func keyValueStore<K: Hashable, V>(_ name: String, key: K.Type = K.self, value: V.Type = V.self) throws -> (any TaskKeyValueStore<K, V>) {
        try task.store(name, as: (any TaskKeyValueStore<K, V>).self, node: node)
    }

    /// The window store `name`, which must be connected to this processor.
    public func windowStore<K: Hashable, V>(_ name: String, key: K.Type = K.self, value: V.Type = V.self) throws -> (any TaskWindowStore<K, V>) {
        try task.store(name, as: (any TaskWindowStore<K, V>).self, node: node)
    }

    /// Calls `punctuator` every `interval` milliseconds of stream time or wall-clock time.
    /// Stream-time punctuators run after the record that moves stream time past their due
    /// time (at most once per record, as in Kafka Streams); wall-clock ones when the driver or
    /// stream thread advances the clock. The punctuator may forward records; they carry the
    /// punctuation time as timestamp.
    @discardableResult
    public func schedule(every interval: Int64, _ type: PunctuationType,
                         _ punctuator: @escaping (Timestamp) throws -> Void) -> Cancellable {
        task.schedule(interval: interval, type: type, node: node, callback: punctuator)
    }
}

/// Runs a user processor as a node.
final class UserProcessorNode<P: Processor>: ProcessorNode<P.InKey, P.InValue, P.OutKey, P.OutValue> {
    let processor: P
    init(name: String, children: [AnyObject], processor: P) {
        self.processor = processor
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        try processor.initialize(ProcessorContext(task: context, node: name, downstream: downstream))
    }
    override func process(_ key: P.InKey, _ value: P.InValue) throws {
        try processor.process(StreamRecord(key: key, value: value, timestamp: context.timestamp, headers: context.headers))
    }
    override func close() { processor.close() }
}
