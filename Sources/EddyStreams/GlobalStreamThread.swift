import EddyCore
import Foundation

/// The worker's global thread (Kafka Streams' `GlobalStreamThread`): reads every partition of
/// the global tables' topics, outside any consumer group, into the global sub-topology's
/// stores, which every stream thread's tasks read.
///
/// ``bootstrap()`` reads each partition from its beginning to the end offset it finds at that
/// moment (the last stable offset under exactly-once, whose consumer reads `read_committed`);
/// the application calls it in ``StreamsApplication/start()`` before any stream thread starts,
/// so the first joins see the whole table. ``run(control:)`` then follows the topics until a
/// stop is requested. The stores are in memory (``SharedTaskKeyValueStore``) and rebuilt at
/// each start: the topic is their changelog, so nothing is committed here.
final class GlobalStreamThread: @unchecked Sendable {
    // @unchecked: built and bootstrapped by `start()`, then handed to its own thread, the only
    // one to touch it afterwards (the shared stores synchronise themselves).
    let configuration: StreamsConfiguration
    let consumer: any LogConsumer
    let task: StreamTask
    let partitions: [TopicPartition]

    /// Builds the global task and its consumer, assigned every partition of the global topics.
    init(application: StreamsApplication, subtopology: Topology.Subtopology) throws {
        configuration = application.configuration
        let app = configuration.applicationID
        var counts: [String: Int] = [:]
        let existing = Set(try application.backend.admin.listTopics())
        for topic in subtopology.sourceTopics {
            let name = Topology.resolve(topic, applicationID: app)
            guard existing.contains(name) else {
                throw EddyError(.unknownTopic, "global table topic '\(name)' of application \(app) does not exist; create it first")
            }
            counts[name] = try application.backend.admin.describeTopic(name).partitions.count
        }
        task = try StreamTask(topology: application.topology, subtopology: subtopology,
                              id: TaskID(subtopology: -1, partition: 0), applicationID: app,
                              collector: GlobalCollector(), globalStores: [:],
                              wallClockTime: Int64(Date().timeIntervalSince1970 * 1000),
                              globalPartitions: { counts[$0].map { Array(0..<$0) } ?? [0] })
        partitions = task.inputPartitions
        let isolation: IsolationLevel = configuration.processingGuarantee == .exactlyOnce ? .readCommitted : .readUncommitted
        consumer = try application.backend.makeConsumer(ConsumerConfiguration(
            clientID: "\(app)-global-consumer", isolation: isolation, autoOffsetReset: .earliest,
            maximumPollRecords: configuration.maximumPollRecords))
        do {
            try consumer.assign(partitions)
            try consumer.seekToBeginning(partitions)
            try task.initialize()
        } catch {
            try? consumer.close()
            throw error
        }
    }

    /// The global stores, by name, for the stream threads' tasks.
    var stores: [String: any TaskStore] { task.stores }

    /// Reads every partition up to the end offsets found now. Returns the records processed.
    @discardableResult
    func bootstrap() throws -> Int {
        let start = ContinuousClock.now
        let ends = try consumer.endOffsets(partitions)
        var processed = 0
        while try partitions.contains(where: { try consumer.position($0) < (ends[$0] ?? 0) }) {
            processed += try pollOnce(timeoutMilliseconds: 100)
        }
        if processed > 0 {
            let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18
                + Double((ContinuousClock.now - start).components.seconds)
            configuration.log("global thread: read \(processed) records of \(partitions.count) global partitions in \(String(format: "%.2f", seconds)) s")
        }
        return processed
    }

    /// One poll and the processing of what it returned. Processing errors follow the
    /// application's handlers, as in the stream threads.
    func pollOnce(timeoutMilliseconds: Int) throws -> Int {
        for part in try consumer.pollRecords(timeoutMilliseconds: timeoutMilliseconds).partitions {
            task.addRecords(part)
        }
        var processed = 0
        while true {
            do {
                guard try task.process() else { break }
                processed += 1
            } catch {
                try StreamThread.handleRecordFailure(StreamThread.eddyError(error), in: task, who: "global thread",
                                                     configuration: configuration)
            }
        }
        return processed
    }

    /// Follows the topics until a stop is requested, then closes. Failures go to `control`.
    func run(control: StreamThreadControl, application: StreamsApplication) {
        defer {
            task.close()
            try? consumer.close()
            control.markStopped()
        }
        _ = control.setState(.running)
        do {
            while !control.isStopRequested {
                let processed = try pollOnce(timeoutMilliseconds: 50)
                control.report(idle: processed == 0, processed: 0, skipped: 0)
            }
            _ = control.setState(.stopped)
        } catch {
            let failure = StreamThread.eddyError(error)
            configuration.log("global thread of \(configuration.applicationID) failed: \(failure)")
            control.fail(failure)
            application.threadStateChanged()
        }
    }

    /// Closes without running (when the start fails after the thread was built).
    func close() {
        task.close()
        try? consumer.close()
    }
}

/// The global task's collector: global tables write only their stores, never topics.
private final class GlobalCollector: RecordCollector {
    func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
        throw EddyError(.invalidState, "the global sub-topology cannot write to topic \(topic)")
    }
    func partitionCount(of topic: String) -> Int? { nil }
}
