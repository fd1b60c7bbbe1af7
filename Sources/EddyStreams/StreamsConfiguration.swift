import EddyCore
import EddyState

/// What a commit promises about input, state and output together.
public enum ProcessingGuarantee: String, Hashable, Sendable, CaseIterable {
    /// Input offsets are committed before the records are processed: a crash loses the records
    /// in flight, never duplicates them.
    case atMostOnce = "at_most_once"
    /// Outputs and changelogs are flushed, then offsets committed: a crash re-processes the
    /// records since the last commit (duplicates in the output, nothing lost).
    case atLeastOnce = "at_least_once"
    /// One transaction per stream thread per commit carries outputs, changelog records and input
    /// offsets; `read_committed` readers see each input's effects exactly once.
    case exactlyOnce = "exactly_once"
}

/// What a stream thread does with a record that fails.
public enum ErrorHandlerResponse: String, Hashable, Sendable, CaseIterable {
    /// The thread stops with an error naming the topic, partition, offset and reason; its tasks
    /// close without committing, so the record is read again by the next run.
    case fail
    /// The record is skipped and counted (``StreamsApplication/skippedRecordCount``), an error
    /// line is logged, and its offset advances with the next commit. The seam a dead letter
    /// queue will hook into.
    case logAndContinue = "log_and_continue"
}

/// What an application does when one of its stream threads stops with an error (Kafka
/// Streams' `StreamsUncaughtExceptionHandler` responses).
public enum ThreadFailureResponse: String, Hashable, Sendable, CaseIterable {
    /// The other stream threads stop too, committing what they processed, and the application
    /// stays in `error` until closed (Kafka's `SHUTDOWN_CLIENT`, its default).
    case shutDownClient = "shutdown_client"
    /// A new stream thread with the same index takes the failed one's place: the failed
    /// thread's tasks closed without committing, so the new thread (or another, after the
    /// rebalance) processes their records again from the last commit. Counted in
    /// ``StreamsApplication/replacedThreadCount``. A record that fails every time makes
    /// threads fail and be replaced for ever, as in Kafka: pair it with `logAndContinue` handlers
    /// for records, or use it for transient failures (Kafka's `REPLACE_THREAD`).
    case replaceThread = "replace_thread"
}

/// Settings of a ``StreamsApplication``.
public struct StreamsConfiguration: Sendable {
    /// Most stream threads one application may run.
    public static let maximumThreads = 64
    /// Shortest allowed commit interval.
    public static let minimumCommitInterval = Duration.milliseconds(1)

    /// Names the consumer group, the transactional ids, the internal topics
    /// (`<applicationID>-…`) and the state directory (`stateDirectory/<applicationID>`).
    public var applicationID: String
    /// Tells apart workers of the same application that run at the same time (in one process or
    /// several): each stream thread's transactional id is `<applicationID>-<thread index>`, or
    /// `<applicationID>-<instanceID>-<thread index>` when set. It must stay the same across a
    /// worker's restarts, so that the restarted worker fences its dead predecessor and aborts
    /// the transactions it left open; two running workers must not share it (they would fence
    /// each other).
    public var instanceID: String?
    /// Where tasks keep their RocksDB stores: `stateDirectory/<applicationID>/<task>/`.
    public var stateDirectory: String
    /// Number of stream threads (1...``maximumThreads``).
    public var threads: Int
    public var processingGuarantee: ProcessingGuarantee
    /// How often each thread commits (Kafka's `commit.interval.ms`). Threads also commit when
    /// their input runs dry, on rebalance and on close.
    public var commitInterval: Duration
    /// For records whose key or value cannot be deserialised (errors with code
    /// ``EddyError/Code/serialization``).
    public var deserializationErrorHandler: ErrorHandlerResponse
    /// For every other error a record's processing throws.
    public var processingErrorHandler: ErrorHandlerResponse
    /// What happens when a stream thread stops with an error. The global thread's failure always
    /// stops the application.
    public var threadFailureResponse: ThreadFailureResponse
    /// How long a task with several input partitions (a join, a merge) waits for data on a
    /// partition that has none buffered before it processes the others without it (Kafka's
    /// `max.task.idle.ms`), so records are processed in timestamp order across partitions.
    /// Whatever the setting, a task waits while the consumer knows that such a partition has
    /// records it has not fetched yet (its lag is above zero), as Kafka Streams does; `.zero`
    /// (the default) waits no longer, a positive duration also waits that long for new
    /// records, and `nil` never waits (Kafka's -1).
    public var maximumTaskIdle: Duration?
    /// Most records one poll of a thread's consumer returns.
    public var maximumPollRecords: Int
    /// Called after every batch a store's restoration applies, on the stream thread that
    /// restores it (the CLI draws a progress bar with it). Keep it cheap.
    public var restoreProgress: (@Sendable (_ task: TaskID, _ progress: RestoreProgress) -> Void)?
    /// Settings of the worker's RocksDB stores (block cache, memtable memory, compression,
    /// background threads, an options string), shared by every task of the application
    /// (Kafka's `rocksdb.config.setter`). Validated when the application starts.
    public var rocksDB: RocksDBConfiguration
    /// Where the runtime's log lines go (restoration progress, skipped records, failures).
    public var log: @Sendable (String) -> Void

    /// Settings with Kafka Streams' defaults where Eddy has them: exactly-once, 100 ms commits.
    public init(applicationID: String, stateDirectory: String, instanceID: String? = nil, threads: Int = 1,
                processingGuarantee: ProcessingGuarantee = .exactlyOnce,
                commitInterval: Duration = .milliseconds(100),
                deserializationErrorHandler: ErrorHandlerResponse = .fail,
                processingErrorHandler: ErrorHandlerResponse = .fail,
                threadFailureResponse: ThreadFailureResponse = .shutDownClient,
                maximumTaskIdle: Duration? = .zero,
                maximumPollRecords: Int = 1_000,
                restoreProgress: (@Sendable (_ task: TaskID, _ progress: RestoreProgress) -> Void)? = nil,
                rocksDB: RocksDBConfiguration = RocksDBConfiguration(),
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.applicationID = applicationID
        self.stateDirectory = stateDirectory
        self.instanceID = instanceID
        self.threads = threads
        self.processingGuarantee = processingGuarantee
        self.commitInterval = commitInterval
        self.deserializationErrorHandler = deserializationErrorHandler
        self.processingErrorHandler = processingErrorHandler
        self.threadFailureResponse = threadFailureResponse
        self.maximumTaskIdle = maximumTaskIdle
        self.maximumPollRecords = maximumPollRecords
        self.restoreProgress = restoreProgress
        self.rocksDB = rocksDB
        self.log = log
    }

    /// Throws ``EddyError/Code/invalidArgument`` (or ``EddyError/Code/invalidName``) for a
    /// value out of range.
    public func validate() throws {
        try Names.validate(applicationID, what: "application id")
        if let instanceID { try Names.validate(instanceID, what: "instance id") }
        guard (1...StreamsConfiguration.maximumThreads).contains(threads) else {
            throw EddyError(.invalidArgument, "threads must be 1...\(StreamsConfiguration.maximumThreads), got \(threads)")
        }
        guard commitInterval >= StreamsConfiguration.minimumCommitInterval else {
            throw EddyError(.invalidArgument, "the commit interval must be at least 1 ms, got \(commitInterval)")
        }
        if let maximumTaskIdle, maximumTaskIdle < .zero {
            throw EddyError(.invalidArgument, "maximumTaskIdle must not be negative (nil never waits), got \(maximumTaskIdle)")
        }
        guard maximumPollRecords >= 1 else {
            throw EddyError(.invalidArgument, "maximumPollRecords must be at least 1, got \(maximumPollRecords)")
        }
        guard !stateDirectory.isEmpty else { throw EddyError(.invalidArgument, "the state directory is empty") }
    }

    /// The commit interval in whole milliseconds.
    var commitIntervalMilliseconds: Int64 {
        let c = commitInterval.components
        return max(1, c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
    }
}
