import EddyCore

/// Identifies a task: one sub-topology working on one partition number of its input topics.
public struct TaskID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Index of the sub-topology in ``Topology/subtopologies``.
    public var subtopology: Int
    /// The partition number of every input topic of the sub-topology that this task reads.
    public var partition: Int
    /// The task of `subtopology` for `partition`.
    public init(subtopology: Int, partition: Int) {
        self.subtopology = subtopology
        self.partition = partition
    }
    /// `subtopology_partition`, as Kafka Streams names tasks (`0_1`).
    public var description: String { "\(subtopology)_\(partition)" }
    public static func < (a: TaskID, b: TaskID) -> Bool {
        a.subtopology == b.subtopology ? a.partition < b.partition : a.subtopology < b.subtopology
    }
}

/// Counters of one task. Read them from the test driver or the runtime's metrics.
public struct TaskMetrics: Hashable, Sendable {
    /// Records handed to the topology.
    public var processedRecords: Int = 0
    /// Records that arrived after their window closed (window end + grace) and were dropped.
    public var droppedLateRecords: Int = 0
    /// Records with a null key or value whose source serde cannot stand for a null, and
    /// records an aggregation or join cannot use for lack of a key; skipped.
    public var skippedNullRecords: Int = 0
    /// Records whose timestamp extractor returned a negative timestamp; skipped.
    public var droppedInvalidTimestampRecords: Int = 0
    /// Final window results sent by emit-final aggregations (``EmitStrategy/onWindowClose``).
    public var emittedFinalResults: Int = 0
    public init() {}
}

/// Where the record being processed came from: what a ``TopicNameExtractor`` and a user
/// ``Processor`` can see of it.
public struct RecordContext: Sendable {
    /// Source topic, or `nil` while a punctuator runs.
    public var topic: String?
    /// Source partition, or -1 while a punctuator runs.
    public var partition: Int
    /// Source offset, or -1 while a punctuator runs.
    public var offset: Offset
    /// The record's timestamp.
    public var timestamp: Timestamp
    /// The record's headers.
    public var headers: [Header]
}

/// Where a task writes its output records: the test driver's in-memory topics, or the stream
/// thread's (transactional) producer. Called on the task's thread only.
protocol RecordCollector: AnyObject {
    /// Queues one record for `topic`. `partition == nil` means the default partitioner:
    /// murmur2 of the key modulo the partition count; records without a key go to partition 0
    /// of single-partition topics and round robin otherwise.
    func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?,
              headers: [Header], timestamp: Timestamp) throws
    /// The topic's partition count, if known.
    func partitionCount(of topic: String) -> Int?
}

/// Whether a punctuator follows stream time (the largest record timestamp the task has seen)
/// or the wall clock.
public enum PunctuationType: Sendable {
    case streamTime
    case wallClockTime
}

/// Handle of a scheduled punctuator; `cancel()` stops it.
public final class Cancellable {
    var isCancelled = false
    init() {}
    /// Stops the punctuator; it is not called again.
    public func cancel() { isCancelled = true }
}

/// A scheduled punctuator.
final class PunctuationSchedule {
    let interval: Int64
    let type: PunctuationType
    var next: Timestamp
    let callback: (Timestamp) throws -> Void
    let node: String
    let cancellable: Cancellable
    init(interval: Int64, type: PunctuationType, next: Timestamp, node: String,
         callback: @escaping (Timestamp) throws -> Void) {
        self.interval = interval
        self.type = type
        self.next = next
        self.node = node
        self.callback = callback
        self.cancellable = Cancellable()
    }
}

/// The per-task state every node of the task shares: the current record's metadata, stream
/// time, stores, the collector and the punctuators. Confined to the task's thread.
final class TaskContext {
    let taskID: TaskID
    let applicationID: String
    // Current record. Nodes read these instead of receiving them with each record.
    var topic: String? = nil
    var partition: Int = -1
    var offset: Offset = -1
    var timestamp: Timestamp = 0
    var headers: [Header] = []
    /// Largest timestamp processed so far; `Int64.min` before the first record. A task created
    /// again (restart, rebalance, failed commit) starts from the largest partition time
    /// committed with its input offsets (``StreamTask/initializeTime(committed:)``).
    var streamTime: Timestamp = .min
    /// Per-node progress committed with the input offsets (Kafka's `ProcessorMetadata`), such
    /// as the window close time up to which an emit-final aggregation has sent its results.
    /// Written by nodes, encoded into every input partition's offset metadata at commit
    /// (``PartitionTimeMetadata``) and read back, largest value per key, when the task is
    /// created again (``StreamTask/initializeTime(committed:)``).
    var processorMetadata: [String: Int64] = [:]
    /// Wall-clock time in milliseconds, as the driver or the stream thread last set it.
    var wallClockTime: Int64
    var metrics = TaskMetrics()
    let collector: any RecordCollector
    var stores: [String: any TaskStore]
    var schedules: [PunctuationSchedule] = []
    /// The node being initialised, to name it in schedules.
    var currentNode = ""

    init(taskID: TaskID, applicationID: String, collector: any RecordCollector,
         stores: [String: any TaskStore], wallClockTime: Int64) {
        self.taskID = taskID
        self.applicationID = applicationID
        self.collector = collector
        self.stores = stores
        self.wallClockTime = wallClockTime
    }

    var recordContext: RecordContext {
        RecordContext(topic: topic, partition: partition, offset: offset, timestamp: timestamp, headers: headers)
    }

    /// The log name of a topology topic: internal topics get the application id as prefix.
    func resolveTopic(_ name: String) -> String {
        Topology.resolve(name, applicationID: applicationID)
    }

    /// The store named `name`, of type `S`, or a clear error.
    func store<S>(_ name: String, as: S.Type, node: String) throws -> S {
        guard let store = stores[name] else {
            throw EddyError(.invalidState, "processor '\(node)' uses store '\(name)', which is not connected to it; connect it with the stores: argument or builder.addStateStore")
        }
        guard let typed = store as? S else {
            throw EddyError(.invalidArgument, "store '\(name)' is a \(type(of: store)), not a \(S.self)")
        }
        return typed
    }

    func schedule(interval: Int64, type: PunctuationType, node: String,
                  callback: @escaping (Timestamp) throws -> Void) -> Cancellable {
        precondition(interval > 0, "punctuation interval must be positive")
        let first: Timestamp = type == .streamTime ? (streamTime == .min ? .min : streamTime) : wallClockTime + interval
        let schedule = PunctuationSchedule(interval: interval, type: type, next: first, node: node, callback: callback)
        schedules.append(schedule)
        return schedule.cancellable
    }
}
