import EddyCore
import EddyState
import Foundation

/// Runs a ``Topology`` as a worker: stream threads that join the application's consumer group
/// on `backend`, own the tasks (sub-topology, partition) the group assigns them, restore their
/// stores from changelogs, process, and commit per the ``ProcessingGuarantee``.
///
/// `start()` creates the internal topics (changelogs, compacted; repartition topics) and
/// missing sink topics with the source topics' partition count, then starts the threads and
/// returns. `close()` stops them gracefully: each commits (exactly-once: commits its open
/// transaction, or aborts it if that fails), closes its stores and releases the state
/// directory locks. Several applications with the same id (threads in one process, or
/// processes sharing the log) split the tasks and rebalance as they come and go.
///
/// Thread-safe: every method may be called from any thread. State-change hooks run on the
/// thread that caused the change (often a stream thread) while the application's lock is
/// held; they may read ``state`` but must not call ``close()``.
///
/// ```swift
/// let app = try StreamsApplication(topology: topology, backend: log,
///     configuration: StreamsConfiguration(applicationID: "counts", stateDirectory: "/var/eddy"))
/// try app.start()
/// _ = app.waitUntilIdle(timeout: .seconds(60))
/// app.close()
/// ```
public final class StreamsApplication: @unchecked Sendable {
    // @unchecked: mutable state is reached only under `lock`; stream threads own their tasks.

    /// The application's lifecycle (Kafka Streams' `KafkaStreams.State`). Legal transitions are
    /// listed in ``canTransition(to:)``, and nowhere else.
    public enum State: String, Hashable, Sendable, CaseIterable {
        case created, rebalancing, running, pendingShutdown = "pending-shutdown", notRunning = "not-running", error

        /// Whether the application may move from `self` to `next`.
        public func canTransition(to next: State) -> Bool {
            switch (self, next) {
            case (.created, .rebalancing), (.created, .pendingShutdown): return true
            case (.rebalancing, .running), (.rebalancing, .pendingShutdown), (.rebalancing, .error): return true
            case (.running, .rebalancing), (.running, .pendingShutdown), (.running, .error): return true
            case (.error, .pendingShutdown): return true
            case (.pendingShutdown, .notRunning): return true
            default: return false
            }
        }
        /// True while stream threads may be working.
        public var isRunningOrRebalancing: Bool { self == .running || self == .rebalancing }
    }

    /// How long ``close(timeout:)`` waits for the threads by default.
    public static let defaultCloseTimeout = Duration.seconds(60)

    public let topology: Topology
    public let backend: any LogBackend
    public let configuration: StreamsConfiguration

    private let lock = NSRecursiveLock()
    private var currentState: State = .created
    private var hooks: [@Sendable (_ old: State, _ new: State) -> Void] = []
    private var controls: [StreamThreadControl] = []
    private var rocksDB: RocksDBEnvironment?

    /// The global thread (when the topology has global tables) and its control.
    private var global: (thread: GlobalStreamThread, control: StreamThreadControl)?
    private var sharedGlobalStores: [String: any TaskStore] = [:]
    private var replacements = 0

    /// Checks the configuration and the topology. Throws ``EddyError/Code/invalidArgument`` for
    /// bad settings.
    public init(topology: Topology, backend: any LogBackend, configuration: StreamsConfiguration) throws {
        try configuration.validate()
        self.topology = topology
        self.backend = backend
        self.configuration = configuration
    }

    /// The current state.
    public var state: State { lock.withLock { currentState } }

    /// The first error a stream thread stopped with, if any.
    public var failure: EddyError? {
        lock.withLock { (controls + (global.map { [$0.control] } ?? [])).lazy.compactMap { $0.snapshot().error }.first }
    }

    /// The stores of the global tables, shared by every task of every stream thread.
    var globalStores: [String: any TaskStore] { lock.withLock { sharedGlobalStores } }

    /// Records skipped by ``ErrorHandlerResponse/logAndContinue`` handlers, over all threads.
    public var skippedRecordCount: Int {
        lock.withLock { controls.reduce(0) { $0 + $1.snapshot().skipped } }
    }

    /// Stream threads replaced after failing (``ThreadFailureResponse/replaceThread``).
    public var replacedThreadCount: Int { lock.withLock { replacements } }

    /// Records processed so far, over all threads.
    public var processedRecordCount: Int {
        lock.withLock { controls.reduce(0) { $0 + $1.snapshot().processed } }
    }

    /// The tasks' counters (processed records, records dropped as late or for an invalid
    /// timestamp, skipped null records) summed over all tasks of all threads since ``start()``,
    /// closed tasks included. Updated by each thread at every commit and when it stops, so it
    /// lags processing by at most one commit interval; after ``waitUntilIdle(timeout:)`` or
    /// ``close(timeout:)`` it is complete. A task re-processing input after a failed commit
    /// counts those records again.
    public var metrics: TaskMetrics {
        lock.withLock {
            controls.reduce(into: TaskMetrics()) { $0.add($1.snapshot().metrics) }
        }
    }

    /// Adds a hook called with the old and new state on every transition.
    public func addStateListener(_ hook: @escaping @Sendable (_ old: State, _ new: State) -> Void) {
        lock.withLock { hooks.append(hook) }
    }

    /// Moves to `next` if that is legal; returns whether it moved.
    @discardableResult
    func transition(to next: State) -> Bool {
        lock.withLock {
            let old = currentState
            guard old.canTransition(to: next) else { return false }
            currentState = next
            for hook in hooks { hook(old, next) }
            return true
        }
    }

    /// A stream thread's state changed: a failed thread is replaced or stops the application
    /// (per ``StreamsConfiguration/threadFailureResponse``); the application is `error` if a
    /// thread failed and was not replaced, `running` if every thread runs, else `rebalancing`.
    func threadStateChanged() {
        lock.withLock {
            guard currentState.isRunningOrRebalancing else { return }
            let globalFailed = global?.control.snapshot().state == .failed
            if !globalFailed, configuration.threadFailureResponse == .replaceThread, let environment = rocksDB {
                for (i, control) in controls.enumerated() where control.snapshot().state == .failed {
                    let error = control.snapshot().error.map { "\($0)" } ?? "unknown error"
                    configuration.log("stream thread \(control.index) of \(configuration.applicationID) failed (\(error)); starting a new thread in its place")
                    let replacement = StreamThreadControl(index: control.index)
                    controls[i] = replacement
                    replacements += 1
                    startThread(replacement, environment: environment)
                }
            }
            let states = controls.map { $0.snapshot().state }
            if states.contains(.failed) || globalFailed {
                // Kafka's SHUTDOWN_CLIENT: the other threads commit and stop.
                for control in controls { control.requestStop() }
                transition(to: .error)
            } else if states.allSatisfy({ $0 == .running || $0 == .stopped }) {
                transition(to: .running)
            } else {
                transition(to: .rebalancing)
            }
        }
    }

    /// Creates missing topics and starts the stream threads; returns at once, except that a
    /// topology with global tables first reads them up to their topics' current end (see
    /// ``StreamsBuilder/globalTable(_:key:value:materializedAs:named:)``). `created ->
    /// rebalancing`. Throws ``EddyError/Code/invalidState`` unless the state is `created`,
    /// ``EddyError/Code/unknownTopic`` for a missing source topic, and the backend's errors.
    public func start() throws {
        try lock.withLock {
            guard currentState == .created else {
                throw EddyError(.invalidState, "application \(configuration.applicationID) is \(currentState.rawValue); only a created application can start")
            }
            try createTopics()
            let environment = try RocksDBEnvironment(configuration: configuration.rocksDB, log: configuration.log)
            rocksDB = environment
            if let subtopology = topology.globalSubtopology {
                let thread = try GlobalStreamThread(application: self, subtopology: subtopology)
                do { try thread.bootstrap() } catch {
                    thread.close()
                    throw error
                }
                let control = StreamThreadControl(index: -1)
                global = (thread, control)
                sharedGlobalStores = thread.stores
                let runner = Thread { [self] in thread.run(control: control, application: self) }
                runner.name = "\(configuration.applicationID)-GlobalStreamThread"
                runner.stackSize = 8 << 20
                runner.start()
            }
            transition(to: .rebalancing)
            for index in 0..<configuration.threads {
                let control = StreamThreadControl(index: index)
                controls.append(control)
            }
            for control in controls { startThread(control, environment: environment) }
        }
    }

    private func startThread(_ control: StreamThreadControl, environment: RocksDBEnvironment) {
        let thread = Thread { [self] in
            StreamThread.runThread(application: self, control: control, rocksDB: environment)
        }
        thread.name = "\(configuration.applicationID)-StreamThread-\(control.index)"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Stops the threads gracefully and waits for them (up to `timeout`). Each thread commits
    /// its tasks (or, if the commit fails, aborts and closes them without committing), closes
    /// its stores, releases its state directories and leaves the group; the global thread, if
    /// any, stops last. Returns whether every thread stopped in time. Idempotent;
    /// `-> pendingShutdown -> notRunning`.
    @discardableResult
    public func close(timeout: Duration = StreamsApplication.defaultCloseTimeout) -> Bool {
        let toJoin: [StreamThreadControl] = lock.withLock {
            if currentState == .notRunning || currentState == .pendingShutdown { return [] }
            transition(to: .pendingShutdown)
            for control in controls { control.requestStop() }
            return controls
        }
        let deadline = ContinuousClock.now + timeout
        var allStopped = true
        for control in toJoin where !control.waitStopped(until: deadline) { allStopped = false }
        if !toJoin.isEmpty, let globalControl = lock.withLock({ global?.control }) {
            globalControl.requestStop()
            if !globalControl.waitStopped(until: deadline) { allStopped = false }
        }
        lock.withLock {
            if currentState == .pendingShutdown, allStopped { transition(to: .notRunning) }
        }
        return allStopped
    }

    /// Waits until every thread is caught up with its input and has committed, with nothing
    /// processed while every thread re-checked its end offsets once more (so records a thread
    /// wrote for another, e.g. through a repartition topic, are seen). Returns false on timeout
    /// or when the application is not running (e.g. a thread failed).
    public func waitUntilIdle(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = state
            if current == .error || current == .notRunning || current == .pendingShutdown { return false }
            let controls = lock.withLock { self.controls }
            let first = controls.map { $0.snapshot() }
            if current == .running, first.allSatisfy(\.idle) {
                // Every thread must confirm idleness twice after this point with no new work.
                var confirmed = true
                while ContinuousClock.now < deadline {
                    let now = controls.map { $0.snapshot() }
                    if zip(first, now).contains(where: { !$1.idle || $1.processed != $0.processed }) {
                        confirmed = false
                        break
                    }
                    if zip(first, now).allSatisfy({ $1.idleChecks >= $0.idleChecks + 2 }) { break }
                    Thread.sleep(forTimeInterval: 0.005)
                }
                if confirmed && ContinuousClock.now < deadline && state == .running { return true }
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    // MARK: - Topics

    /// The log names of the changelog topics of the topology's stores that have a persistent
    /// (RocksDB) variant.
    var changelogTopics: [String] {
        topology.stores.values.filter { $0.persistent != nil }.map {
            ChangelogTopic.name(application: configuration.applicationID, store: $0.name)
        }.sorted()
    }

    /// Creates changelog topics (compacted), repartition topics and missing fixed sink topics,
    /// each with the user source topics' largest partition count unless the topology fixes it.
    private func createTopics() throws {
        let admin = backend.admin
        let existing = Set(try admin.listTopics())
        let application = configuration.applicationID
        var partitions = 1
        var counts: [String: Int] = [:]
        for topic in topology.subtopologies.flatMap(\.sourceTopics) where !topic.hasPrefix(Topology.internalPrefix) {
            guard existing.contains(topic) else {
                throw EddyError(.unknownTopic, "source topic '\(topic)' of application \(application) does not exist; create it first")
            }
            let count = try admin.describeTopic(topic).partitions.count
            counts[topic] = count
            partitions = max(partitions, count)
        }
        for group in topology.copartitionGroups {
            let known = Set(group.compactMap { counts[$0] })
            if known.count > 1 {
                throw EddyError(.invalidArgument, "topics \(group.joined(separator: ", ")) must be co-partitioned but have partition counts \(known.sorted())")
            }
        }
        func create(_ name: String, _ configuration: TopicConfiguration) throws {
            guard !existing.contains(name) else { return }
            do { try admin.createTopic(name, configuration: configuration) } catch let error as EddyError where error.code == .topicExists {}
        }
        for topic in topology.internalTopics.values {
            let count = topic.partitionCount ?? topic.partitionCountLike.flatMap { counts[$0] } ?? partitions
            try create(Topology.resolve(Topology.internalPrefix + topic.name, applicationID: application),
                       TopicConfiguration(partitions: count))
        }
        for name in changelogTopics { try create(name, .compacted(partitions: partitions)) }
        for topic in topology.sinkTopics(applicationID: application) { try create(topic, TopicConfiguration(partitions: partitions)) }
    }
}

/// What a stream thread shares with its application: a stop request, its state, its counters.
/// Touched once per poll loop, never per record; thread-safe through one lock.
final class StreamThreadControl: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    enum ThreadState: Equatable, Sendable { case starting, rebalancing, running, stopped, failed }
    struct Snapshot: Sendable {
        var state: ThreadState
        var idle: Bool
        var idleChecks: Int
        var processed: Int
        var skipped: Int
        var error: EddyError?
        /// The thread's task counters, as of its last commit.
        var metrics = TaskMetrics()
    }

    let index: Int
    private let lock = NSLock()
    private var stopRequested = false
    private var current = Snapshot(state: .starting, idle: false, idleChecks: 0, processed: 0, skipped: 0, error: nil)
    private let stopped = DispatchSemaphore(value: 0)

    init(index: Int) { self.index = index }

    func snapshot() -> Snapshot { lock.withLock { current } }
    var isStopRequested: Bool { lock.withLock { stopRequested } }
    func requestStop() { lock.withLock { stopRequested = true } }

    /// Returns whether the state changed.
    func setState(_ state: ThreadState) -> Bool {
        lock.withLock {
            guard current.state != state, current.state != .failed else { return false }
            current.state = state
            return true
        }
    }
    func report(idle: Bool, processed: Int, skipped: Int) {
        lock.withLock {
            current.idle = idle
            if idle { current.idleChecks += 1 }
            current.processed = processed
            current.skipped = skipped
        }
    }
    func report(metrics: TaskMetrics) {
        lock.withLock { current.metrics = metrics }
    }
    func fail(_ error: EddyError) {
        lock.withLock {
            if current.error == nil { current.error = error }
            current.state = .failed
            current.idle = false
        }
    }
    func markStopped() { stopped.signal() }
    func waitStopped(until deadline: ContinuousClock.Instant) -> Bool {
        let left = deadline - ContinuousClock.now
        let c = left.components
        let nanoseconds = max(0, c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
        if stopped.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .success {
            stopped.signal()  // Later waiters (a second close) return at once too.
            return true
        }
        return false
    }
}
