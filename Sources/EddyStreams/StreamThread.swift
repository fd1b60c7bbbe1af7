import EddyCore
import EddyState
import Foundation

/// Stores of EddyState behind the task stores, for the commit protocol.
protocol StateStoreBacked: AnyObject {
    var backingStateStore: any StateStore { get }
}
extension PersistentTaskKeyValueStore: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}
extension PersistentTaskWindowStore: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}
extension PersistentTaskSessionStore: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}

/// One stream thread: a group consumer subscribed to the topology's source topics, the tasks
/// the group assigns it, a producer (transactional for exactly-once, id
/// `<applicationID>[-<instanceID>]-<thread index>`), and the poll–process–commit loop.
///
/// Everything here is confined to the thread that runs ``runThread(application:control:rocksDB:)``:
/// tasks, stores, consumer and producer are touched by no other thread, so the per-record
/// path takes no lock. The application talks to it only through ``StreamThreadControl``.
final class StreamThread: RebalanceListener, RawRecordCollector {
    /// Commits failing this many times in a row stop the thread with the last error.
    static let maximumConsecutiveCommitFailures = 5

    let application: StreamsApplication
    let configuration: StreamsConfiguration
    let topology: Topology
    let control: StreamThreadControl
    let rocksDB: RocksDBEnvironment
    let transactionalID: String
    let consumer: any LogConsumer
    let restoreConsumer: any LogConsumer
    var producer: any LogProducer
    var transactional: (any TransactionalProducer)? { producer as? any TransactionalProducer }

    /// Sub-topology reading each source topic (log names).
    let subtopologyOfTopic: [String: Topology.Subtopology]
    var tasks: [TaskID: StreamTask] = [:]
    var directories: [TaskID: TaskStateDirectory?] = [:]
    var routes: [TopicPartition: StreamTask] = [:]
    var partitionCounts: [String: Int] = [:]
    /// Something was processed or punctuated since the last commit.
    var dirty = false
    var lastCommit = ContinuousClock.now
    var processed = 0
    var skipped = 0
    var consecutiveCommitFailures = 0
    /// Counters of the tasks this thread has closed (the open ones keep their own).
    var closedTaskMetrics = TaskMetrics()
    /// An error raised inside a rebalance callback, rethrown after `poll`.
    var callbackError: (any Error)?
    /// A commit failed inside a rebalance callback: the remaining tasks must be re-initialised.
    var needsReinitialization = false

    /// The thread body: builds the thread's clients, runs the loop until a stop is requested,
    /// then shuts down; failures are reported through `control`.
    static func runThread(application: StreamsApplication, control: StreamThreadControl, rocksDB: RocksDBEnvironment) {
        defer { control.markStopped() }
        let configuration = application.configuration
        let thread: StreamThread
        do {
            thread = try StreamThread(application: application, control: control, rocksDB: rocksDB)
        } catch {
            control.fail(Self.eddyError(error))
            configuration.log("stream thread \(control.index) could not start: \(error)")
            application.threadStateChanged()
            return
        }
        thread.run()
    }

    init(application: StreamsApplication, control: StreamThreadControl, rocksDB: RocksDBEnvironment) throws {
        self.application = application
        configuration = application.configuration
        topology = application.topology
        self.control = control
        self.rocksDB = rocksDB
        let app = configuration.applicationID
        transactionalID = configuration.instanceID.map { "\(app)-\($0)-\(control.index)" } ?? "\(app)-\(control.index)"
        var map: [String: Topology.Subtopology] = [:]
        for sub in topology.subtopologies {
            for topic in sub.sourceTopics { map[Topology.resolve(topic, applicationID: app)] = sub }
        }
        subtopologyOfTopic = map
        let isolation: IsolationLevel = configuration.processingGuarantee == .exactlyOnce ? .readCommitted : .readUncommitted
        consumer = try application.backend.makeConsumer(ConsumerConfiguration(
            groupID: app, clientID: "\(transactionalID)-consumer", isolation: isolation, autoOffsetReset: .earliest,
            maximumPollRecords: configuration.maximumPollRecords))
        restoreConsumer = try application.backend.makeConsumer(ConsumerConfiguration(
            clientID: "\(transactionalID)-restore-consumer", isolation: .readCommitted, autoOffsetReset: .earliest,
            maximumPollRecords: 10_000))
        producer = try Self.makeProducer(application, transactionalID: transactionalID)
    }

    /// How long the thread's producer lets a batch fill before sending it (Kafka Streams' default).
    static let producerLingerMilliseconds = 100

    static func makeProducer(_ application: StreamsApplication, transactionalID: String) throws -> any LogProducer {
        // Kafka Streams' producer default (linger.ms = 100): a commit flushes the producer
        // anyway, so records wait at most one commit interval and leave in full batches.
        let configuration = ProducerConfiguration(clientID: "\(transactionalID)-producer",
                                                  lingerMilliseconds: Self.producerLingerMilliseconds)
        if application.configuration.processingGuarantee == .exactlyOnce {
            let producer = try application.backend.makeTransactionalProducer(configuration, transactionalID: transactionalID)
            try producer.initTransactions()
            try producer.beginTransaction()
            return producer
        }
        return try application.backend.makeProducer(configuration)
    }

    static func eddyError(_ error: any Error) -> EddyError {
        (error as? EddyError) ?? EddyError(.invalidState, "\(error)")
    }

    private func setState(_ state: StreamThreadControl.ThreadState) {
        if control.setState(state) { application.threadStateChanged() }
    }

    // MARK: - The loop

    func run() {
        do {
            setState(.rebalancing)
            try consumer.subscribe(Array(subtopologyOfTopic.keys).sorted(), listener: self)
            while !control.isStopRequested {
                try runOnce()
            }
            shutDown(clean: true)
            setState(.stopped)
        } catch {
            let failure = Self.eddyError(error)
            configuration.log("stream thread \(control.index) of \(configuration.applicationID) failed: \(failure)")
            shutDown(clean: false)
            control.fail(failure)
            application.threadStateChanged()
        }
    }

    /// One poll, the processing of what it returned, and a commit when due.
    func runOnce() throws {
        let buffered = tasks.values.contains { $0.bufferedRecordCount > 0 }
        let records = try consumer.pollRecords(timeoutMilliseconds: buffered ? 0 : 20)
        if let error = callbackError {
            callbackError = nil
            throw error
        }
        if needsReinitialization { try reinitialize() }
        setState(.running)
        if !records.partitions.isEmpty {
            if configuration.processingGuarantee == .atMostOnce {
                var offsets: [TopicPartition: OffsetAndMetadata] = [:]
                for part in records.partitions {
                    if let last = part.entries.last { offsets[part.topicPartition] = OffsetAndMetadata(last.offset + 1) }
                }
                // The partition time so far (the polled records are not processed yet).
                for tp in offsets.keys { offsets[tp]!.metadata = routes[tp]?.partitionTimeMetadata(tp) ?? "" }
                try consumer.commit(offsets)
            }
            route(records)
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var didWork = !records.partitions.isEmpty
        do {
            for task in tasks.values {
                try task.advanceWallClock(to: now)
                if try process(task) > 0 { didWork = true }
            }
        } catch let error as EddyError where error.isAbortable || error.isFatal {
            // The producer's transaction broke while sending (librdkafka refuses records once it
            // must abort, or is fenced): recover as from a failed commit.
            consecutiveCommitFailures += 1
            configuration.log("stream thread \(control.index): send failed (\(error)); re-initialising its tasks from the last commit")
            if consecutiveCommitFailures >= Self.maximumConsecutiveCommitFailures { throw error }
            try recoverFromFailedCommit(error)
            return
        }
        if didWork { dirty = true }
        let due = ContinuousClock.now - lastCommit >= configuration.commitInterval
        if dirty && (due || records.partitions.isEmpty) { try commitAll() }
        if !didWork && !dirty {
            control.report(idle: try caughtUp(), processed: processed, skipped: skipped)
        } else {
            control.report(idle: false, processed: processed, skipped: skipped)
        }
    }

    /// Hands records to their tasks, one partition's run at a time (their bytes are not copied).
    private func route(_ records: ConsumerRecords) {
        for part in records.partitions {
            if let task = routes[part.topicPartition] { task.addRecords(part) }
        }
    }

    /// Longest a task waits for a lagging partition's records to be fetched before it
    /// processes without them (a safety net: the fetch normally brings them much sooner).
    static let maximumLagWait = Duration.seconds(10)

    /// Whether a task may process now, and whether it must stop when a partition runs dry
    /// (Kafka Streams' task idling, see ``StreamsConfiguration/maximumTaskIdle``).
    private func readiness(_ task: StreamTask) throws -> (ready: Bool, requireAll: Bool) {
        guard let idle = configuration.maximumTaskIdle else { return (true, false) }
        let waiting = task.partitionsAwaitingData
        guard !waiting.isEmpty else {
            task.idleSince = nil
            // With data on every partition, stop when one runs dry, so the order across
            // partitions stays by timestamp; the next round decides again.
            return (true, task.inputPartitions.count > 1)
        }
        let now = ContinuousClock.now
        let since = task.idleSince ?? now
        task.idleSince = since
        let ends = try consumer.endOffsets(waiting)
        let lagging = try waiting.contains { try consumer.position($0) < (ends[$0] ?? 0) }
        if lagging ? now - since < Self.maximumLagWait : now - since < idle { return (false, true) }
        task.idleSince = nil
        return (true, false)
    }

    /// Processes the task's buffered records, applying the error handlers.
    private func process(_ task: StreamTask) throws -> Int {
        var count = 0
        let (ready, requireAll) = try readiness(task)
        guard ready else { return 0 }
        while true {
            do {
                guard try task.process(requireAllPartitions: requireAll) else { return count }
                count += 1
                processed += 1
            } catch {
                count += 1
                let failure = Self.eddyError(error)
                if failure.isAbortable || failure.isFatal { throw failure }  // the producer's, not the record's
                try Self.handleRecordFailure(failure, in: task, who: "task \(task.id)", configuration: configuration)
                skipped += 1
            }
        }
    }

    /// Applies the configured error handler to a record's failure: throws (naming the record's
    /// topic, partition and offset) for ``ErrorHandlerResponse/fail``, logs and returns for
    /// ``ErrorHandlerResponse/logAndContinue``. Shared with the global thread.
    static func handleRecordFailure(_ failure: EddyError, in task: StreamTask, who: String,
                                    configuration: StreamsConfiguration) throws {
        let handler = failure.code == .serialization ? configuration.deserializationErrorHandler
                                                     : configuration.processingErrorHandler
        let context = task.context
        let place = "\(context.topic ?? "?")-\(context.partition) offset \(context.offset)"
        switch handler {
        case .fail:
            throw EddyError(failure.code, "\(who) failed on record \(place): \(failure.message)")
        case .logAndContinue:
            configuration.log("\(who) skipped record \(place): \(failure.message)")
        }
    }

    /// True when every assigned partition has been read to its end and nothing is buffered.
    private func caughtUp() throws -> Bool {
        if tasks.values.contains(where: { $0.bufferedRecordCount > 0 }) { return false }
        let assigned = consumer.assignment()
        guard !assigned.isEmpty else { return true }
        let ends = try consumer.endOffsets(assigned)
        for tp in assigned where try consumer.position(tp) < (ends[tp] ?? 0) { return false }
        return true
    }

    // MARK: - Commit

    private func stateStores(_ task: StreamTask) -> [any StateStore] {
        task.stores.keys.sorted().compactMap { (task.stores[$0] as? any StateStoreBacked)?.backingStateStore }
    }

    /// Commits every task of the thread per the processing guarantee. On failure, the tasks are
    /// closed without committing and re-initialised from the last committed state (the error
    /// is rethrown after too many failures in a row).
    func commitAll() throws {
        do {
            try commitOrThrow()
            consecutiveCommitFailures = 0
        } catch {
            consecutiveCommitFailures += 1
            configuration.log("stream thread \(control.index): commit failed (\(error)); re-initialising its tasks from the last commit")
            if consecutiveCommitFailures >= Self.maximumConsecutiveCommitFailures { throw error }
            try recoverFromFailedCommit(Self.eddyError(error))
        }
    }

    private func commitOrThrow() throws {
        lastCommit = ContinuousClock.now
        guard dirty else { return }
        for task in tasks.values { try task.writeBack() }
        // Each partition's time goes with its offset, so a restarted task resumes its stream time.
        var offsets: [TopicPartition: OffsetAndMetadata] = [:]
        for task in tasks.values { offsets.merge(task.committableOffsets) { $1 } }
        let stores = tasks.values.flatMap { stateStores($0) }
        switch configuration.processingGuarantee {
        case .exactlyOnce:
            guard let transactional else { throw EddyError(.invalidState, "exactly-once needs a transactional producer") }
            for store in stores where store.hasUncommittedChanges { try store.prepareCommit(producer: transactional, timestamp: nil) }
            if !offsets.isEmpty {
                guard let group = consumer.groupMetadata() else {
                    throw EddyError(.invalidState, "the consumer of stream thread \(control.index) is not in its group")
                }
                try transactional.sendOffsetsToTransaction(offsets, group: group)
            }
            try transactional.commitTransaction()
            for store in stores where store.hasUncommittedChanges { try store.commit() }
            try transactional.beginTransaction()
        case .atLeastOnce, .atMostOnce:
            for store in stores where store.hasUncommittedChanges { try store.prepareCommit(producer: producer, timestamp: nil) }
            try producer.flush()
            for store in stores where store.hasUncommittedChanges { try store.commit() }
            if configuration.processingGuarantee == .atLeastOnce && !offsets.isEmpty { try consumer.commit(offsets) }
            if configuration.processingGuarantee == .atMostOnce && !offsets.isEmpty {
                // The offsets went out before processing (at the poll); commit the positions
                // again, now with the partition times of what was processed since. Never behind
                // what the poll committed, so no record is read twice.
                var positions: [TopicPartition: OffsetAndMetadata] = [:]
                for (tp, entry) in offsets {
                    guard let position = try? consumer.position(tp) else { continue }  // no longer assigned
                    positions[tp] = OffsetAndMetadata(position, metadata: entry.metadata)
                }
                if !positions.isEmpty { try consumer.commit(positions) }
            }
        }
        dirty = false
        reportMetrics()
    }

    /// Publishes the task counters (closed and open tasks) to the application.
    private func reportMetrics() {
        var metrics = closedTaskMetrics
        for task in tasks.values { metrics.add(task.context.metrics) }
        control.report(metrics: metrics)
    }

    /// Aborts what can be aborted, drops every task without committing, and rebuilds them from
    /// committed state: stores restore from their checkpoints and changelogs, input is re-read
    /// from the committed offsets. A fenced producer is replaced by a new incarnation.
    private func recoverFromFailedCommit(_ error: EddyError) throws {
        if let transactional, !error.isFatal {
            do { try transactional.abortTransaction() } catch {
                configuration.log("stream thread \(control.index): abort failed (\(error)); replacing the producer")
                try? producer.close()
                producer = try Self.makeProducer(application, transactionalID: transactionalID)
                try reinitialize()
                return
            }
            try transactional.beginTransaction()
        } else if transactional != nil {
            try? producer.close()
            producer = try Self.makeProducer(application, transactionalID: transactionalID)
        }
        try reinitialize()
    }

    /// Closes every task dirty and re-creates the tasks of the current assignment, rewinding
    /// the consumer to the committed offsets.
    private func reinitialize() throws {
        needsReinitialization = false
        closeTasks(Array(tasks.keys), clean: false)
        let assigned = consumer.assignment()
        let committed = try consumer.committed(assigned)
        for tp in assigned {
            if let offset = committed[tp] { try consumer.seek(tp, to: offset) } else { try consumer.seekToBeginning([tp]) }
        }
        try createTasks(for: assigned)
        dirty = false
    }

    // MARK: - Tasks

    private func taskIDs(for partitions: [TopicPartition]) -> Set<TaskID> {
        Set(partitions.compactMap { tp in subtopologyOfTopic[tp.topic].map { TaskID(subtopology: $0.id, partition: tp.partition) } })
    }

    /// Opens the tasks' state directories, restores their stores from the changelogs, and
    /// initialises them.
    private func createTasks(for partitions: [TopicPartition]) throws {
        for id in taskIDs(for: partitions).sorted() where tasks[id] == nil {
            let sub = topology.subtopologies[id.subtopology]
            // Only tasks with persistent stores get a state directory (and a RocksDB database).
            let directory: TaskStateDirectory? = sub.stores.contains { topology.stores[$0]?.persistent != nil }
                ? try TaskStateDirectory(stateDirectory: configuration.stateDirectory,
                                         application: configuration.applicationID,
                                         task: id.description, environment: rocksDB)
                : nil
            let task: StreamTask
            do {
                task = try StreamTask(topology: topology, subtopology: sub, id: id,
                                      applicationID: configuration.applicationID, collector: self,
                                      globalStores: application.globalStores,
                                      wallClockTime: Int64(Date().timeIntervalSince1970 * 1000),
                                      stateDirectory: directory, loggedStores: true)
                // Partition times and stream time resume from the committed offsets' metadata.
                task.initializeTime(committed: try consumer.committedWithMetadata(task.inputPartitions))
                for store in stateStores(task) where store.changelog != nil {
                    let hook = configuration.restoreProgress
                    let result = try StateRestorer.restore(store, consumer: restoreConsumer,
                                                           progress: hook.map { hook in { hook(id, $0) } })
                    if result.records > 0 {
                        configuration.log("task \(id): restored store \(store.name) from \(result.changelog), \(result.records) records in \(String(format: "%.2f", result.elapsedSeconds)) s (\(Int(result.recordsPerSecond)) records/s)")
                    }
                }
                try task.initialize()
            } catch {
                directory?.close()
                throw error
            }
            tasks[id] = task
            directories[id] = directory
            for tp in task.inputPartitions { routes[tp] = task }
        }
    }

    /// Closes tasks; `clean: false` drops their uncommitted store changes first.
    private func closeTasks(_ ids: [TaskID], clean: Bool) {
        for id in ids {
            guard let task = tasks.removeValue(forKey: id) else { continue }
            if !clean { for store in stateStores(task) { store.abort() } }
            for tp in task.inputPartitions { routes[tp] = nil }
            closedTaskMetrics.add(task.context.metrics)
            task.close()
            if let directory = directories.removeValue(forKey: id) { directory?.close() }
        }
    }

    /// Graceful: commits then closes everything; otherwise aborts. Never throws: a failure
    /// to commit while closing falls back to closing without committing.
    private func shutDown(clean: Bool) {
        var committed = false
        if clean {
            do {
                try commitOrThrow()
                committed = true
            } catch {
                configuration.log("stream thread \(control.index): final commit failed (\(error)); closing without committing")
            }
        }
        if !committed, let transactional { try? transactional.abortTransaction() }
        closeTasks(Array(tasks.keys), clean: committed)
        reportMetrics()
        try? producer.close()
        try? consumer.close()
        try? restoreConsumer.close()
    }

    // MARK: - RebalanceListener (called inside `poll`, on this thread)

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        setState(.rebalancing)
        let revoked = taskIDs(for: partitions).filter { tasks[$0] != nil }
        guard !revoked.isEmpty else { return }
        do {
            try commitOrThrow()
            closeTasks(Array(revoked), clean: true)
        } catch {
            configuration.log("stream thread \(control.index): commit on revocation failed (\(error)); closing the revoked tasks without committing")
            if let transactional { try? transactional.abortTransaction() }
            closeTasks(Array(revoked), clean: false)
            needsReinitialization = true
            if let transactional {
                do { try transactional.beginTransaction() } catch {
                    try? producer.close()
                    do { producer = try Self.makeProducer(application, transactionalID: transactionalID) } catch { callbackError = error }
                }
            }
        }
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) {
        setState(.rebalancing)
        do { try createTasks(for: partitions) } catch { callbackError = error }
    }

    // MARK: - RecordCollector (the tasks' output, into the thread's producer)

    func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
        try producer.send(ProducerRecord(topic: topic, partition: partition, key: key, value: value,
                                         headers: headers, timestamp: timestamp), delivery: nil)
    }

    func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
              headers: [Header], timestamp: Timestamp) throws {
        try producer.send(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp)
    }

    func partitionCount(of topic: String) -> Int? {
        if let count = partitionCounts[topic] { return count }
        guard let count = try? producer.partitionCount(of: topic) else { return nil }
        partitionCounts[topic] = count
        return count
    }
}

extension TaskMetrics {
    /// Adds `other`'s counters to these.
    mutating func add(_ other: TaskMetrics) {
        processedRecords += other.processedRecords
        droppedLateRecords += other.droppedLateRecords
        skippedNullRecords += other.skippedNullRecords
        droppedInvalidTimestampRecords += other.droppedInvalidTimestampRecords
        emittedFinalResults += other.emittedFinalResults
    }
}
