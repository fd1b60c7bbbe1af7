import EddyCore

/// The embedded log's transactional producer (Kafka's exactly-once v2 model). Confined to one
/// thread at a time.
///
/// Records sent inside a transaction are batched per partition and appended as transactional
/// batches (producer id and epoch stamped) when a batch is full or at `commitTransaction`; they
/// are invisible to `read_committed` readers until the commit marker is written. Lingering does
/// not apply: a transaction's batches wait for the commit.
///
/// A transaction left open longer than `transaction.timeout.ms` (from
/// `ProducerConfiguration.extra`, default 60 s) is aborted by the log's maintenance thread and
/// the producer fenced, as Kafka's coordinator does.
///
/// Its lifecycle is the state machine ``State``; ``transition(_:on:)`` lists every legal move.
/// A fenced producer (a newer one called `initTransactions` with the same id) is in
/// ``State/fatalError`` for good and must be closed; after an abortable failure (an append
/// failed, or the consumer group fenced the offsets) only `abortTransaction` is allowed.
final class EmbeddedTransactionalProducer: TransactionalProducer {
    /// Where the producer is in its lifecycle.
    enum State: Equatable {
        /// Made, `initTransactions()` not yet called.
        case uninitialized
        /// Between transactions.
        case ready
        /// `beginTransaction()` was called.
        case inTransaction
        /// Something inside the transaction failed; only `abortTransaction()` (or `close`) is allowed.
        case abortableError
        /// Fenced (or otherwise unusable); only `close` is allowed.
        case fatalError
        case closed
    }

    /// What happens to the producer.
    enum Event {
        case initialize, begin, send, sendOffsets, commit, abort, abortableFailure, fatalFailure, close
    }

    /// The legal transitions, all in one place: the next state, or `nil` if `event` is not
    /// allowed in `state`.
    static func transition(_ state: State, on event: Event) -> State? {
        switch (state, event) {
        case (.closed, _): return nil
        case (_, .close): return .closed
        case (_, .fatalFailure): return .fatalError
        case (.fatalError, _): return nil
        case (.uninitialized, .initialize): return .ready
        case (.ready, .begin): return .inTransaction
        case (.inTransaction, .send), (.inTransaction, .sendOffsets): return .inTransaction
        case (.inTransaction, .commit): return .ready
        case (.inTransaction, .abort), (.abortableError, .abort): return .ready
        case (.inTransaction, .abortableFailure), (.abortableError, .abortableFailure): return .abortableError
        default: return nil
        }
    }

    let transactionalID: String
    private let log: EmbeddedLog
    /// Unchecked exclusivity: the producer is confined to its owner's thread and no access to
    /// the accumulator overlaps another (its append closure does not touch it).
    @exclusivity(unchecked) private var accumulator: RecordAccumulator
    private(set) var state: State = .uninitialized
    private var fatal: EddyError?
    private var identity: RecordAccumulator.TransactionalIdentity?
    private let timeoutMilliseconds: Int

    init(log: EmbeddedLog, configuration: ProducerConfiguration, transactionalID: String) throws {
        try Names.validate(transactionalID, what: "transactional id")
        try RecordAccumulator.validate(configuration)
        var timeout = TransactionCoordinator.defaultTimeoutMilliseconds
        if let text = configuration.extra["transaction.timeout.ms"] {
            guard let value = Int(text), value >= 1 else {
                throw EddyError(.invalidArgument, "transaction.timeout.ms must be a number >= 1, got \(text)")
            }
            timeout = value
        }
        timeoutMilliseconds = timeout
        self.log = log
        self.transactionalID = transactionalID
        accumulator = RecordAccumulator(log: log, configuration: configuration, transactional: nil)
    }

    deinit {
        if state != .closed { try? close() }
    }

    /// Throws the error a caller sees for `event` in the current state, if it is illegal.
    private func check(_ event: Event, _ what: String) throws {
        guard EmbeddedTransactionalProducer.transition(state, on: event) == nil else { return }
        switch state {
        case .closed: throw EddyError(.closed, "the transactional producer \(transactionalID) is closed")
        case .fatalError:
            throw fatal ?? EddyError(.producerFenced, "the transactional producer \(transactionalID) was fenced")
        case .abortableError:
            throw EddyError(.transactionAborted, "the transaction of \(transactionalID) failed; call abortTransaction() before \(what)")
        default:
            throw EddyError(.invalidState, "cannot \(what) in state \(state) (transactional id \(transactionalID))")
        }
    }

    private func move(_ event: Event) {
        if let next = EmbeddedTransactionalProducer.transition(state, on: event) { state = next }
    }

    /// Records a failure and returns the error to throw: a fenced producer is fatal; anything
    /// else inside a transaction is abortable (reported as ``EddyError/Code/transactionAborted``
    /// naming the cause, except a fenced consumer group member, which keeps its own code).
    private func fail(_ error: EddyError) -> EddyError {
        switch error.code {
        case .producerFenced, .closed:
            fatal = error
            move(.fatalFailure)
            return error
        case .consumerFenced, .transactionAborted:
            move(.abortableFailure)
            return error
        default:
            move(.abortableFailure)
            return EddyError(.transactionAborted, "the transaction of \(transactionalID) must be aborted: \(error)")
        }
    }

    /// Runs the delivery handlers whose results are known (on this, the owner's, thread).
    private func deliver() {
        RecordAccumulator.run(accumulator.takeCompletions())
    }

    private func appendTransactional(_ batch: inout [UInt8], _ partition: PartitionLog) throws -> PartitionLog.AppendResult {
        guard let identity else { throw EddyError(.invalidState, "initTransactions() was not called") }
        return try log.transactions.append(&batch, to: partition, transactionalID: transactionalID,
                                           producerID: identity.producerID, epoch: identity.epoch)
    }

    func initTransactions() throws {
        try check(.initialize, "initTransactions()")
        let (producerID, epoch) = try log.transactions.initTransactions(transactionalID, timeoutMilliseconds: timeoutMilliseconds)
        identity = .init(producerID: producerID, epoch: epoch)
        accumulator.transactional = identity
        move(.initialize)
    }

    func beginTransaction() throws {
        try check(.begin, "beginTransaction()")
        move(.begin)
    }

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws {
        try check(.send, "send")
        defer { deliver() }
        try accumulator.add(record, delivery: delivery) { batch, partition in try appendTransactional(&batch, partition) }
        if let error = accumulator.pendingError { _ = fail(error) }
    }

    func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
              headers: [Header], timestamp: Timestamp?) throws {
        try check(.send, "send")
        defer { if accumulator.hasCompletions { deliver() } }
        try accumulator.add(topic: topic, partition: partition, key: key, value: value, headers: headers,
                            timestamp: timestamp, delivery: nil) { batch, partition in try appendTransactional(&batch, partition) }
        if let error = accumulator.pendingError { _ = fail(error) }
    }

    func flush() throws {
        if state == .closed { throw EddyError(.closed, "the transactional producer \(transactionalID) is closed") }
        guard state == .inTransaction else { return }
        defer { deliver() }
        try accumulator.drainAll { batch, partition in try appendTransactional(&batch, partition) }
        do {
            try accumulator.takeFirstError()
        } catch let error as EddyError {
            throw fail(error)
        }
    }

    func poll() {}

    func partitionCount(of topic: String) throws -> Int {
        if state == .closed { throw EddyError(.closed, "the transactional producer \(transactionalID) is closed") }
        return try log.topic(topic).partitions.count
    }

    func sendOffsetsToTransaction(_ offsets: [TopicPartition: Offset], group: ConsumerGroupMetadata) throws {
        try sendOffsetsToTransaction(offsets.mapValues { OffsetAndMetadata($0) }, group: group)
    }

    func sendOffsetsToTransaction(_ offsets: [TopicPartition: OffsetAndMetadata], group: ConsumerGroupMetadata) throws {
        try check(.sendOffsets, "sendOffsetsToTransaction()")
        guard let identity else { throw EddyError(.invalidState, "initTransactions() was not called") }
        do {
            try log.transactions.addOffsets(offsets, group: group, transactionalID: transactionalID,
                                            producerID: identity.producerID, epoch: identity.epoch)
        } catch let error as EddyError {
            throw error.code == .invalidArgument ? error : fail(error)
        }
    }

    func commitTransaction() throws {
        try check(.commit, "commitTransaction()")
        guard let identity else { throw EddyError(.invalidState, "initTransactions() was not called") }
        try flush()
        do {
            try log.transactions.endTransaction(commit: true, transactionalID: transactionalID,
                                                producerID: identity.producerID, epoch: identity.epoch)
        } catch let error as EddyError {
            if error.code == .producerFenced || error.code == .closed { throw fail(error) }
            // Before the commit point the transaction is aborted; past it, commit may be retried.
            do {
                try log.transactions.endTransaction(commit: false, transactionalID: transactionalID,
                                                    producerID: identity.producerID, epoch: identity.epoch)
                move(.abort)
            } catch {}
            throw error
        }
        move(.commit)
    }

    func abortTransaction() throws {
        try check(.abort, "abortTransaction()")
        guard let identity else { throw EddyError(.invalidState, "initTransactions() was not called") }
        accumulator.discardAll(EddyError(.transactionAborted, "the transaction of \(transactionalID) was aborted"))
        try? accumulator.takeFirstError()
        deliver()
        do {
            try log.transactions.endTransaction(commit: false, transactionalID: transactionalID,
                                                producerID: identity.producerID, epoch: identity.epoch)
        } catch let error as EddyError {
            if error.code == .producerFenced || error.code == .closed { throw fail(error) }
            throw error
        }
        move(.abort)
    }

    /// Aborts an open transaction (its records fail with ``EddyError/Code/transactionAborted``)
    /// and releases the producer. Idempotent.
    func close() throws {
        guard state != .closed else { return }
        if state == .inTransaction || state == .abortableError {
            accumulator.discardAll(EddyError(.transactionAborted, "the producer \(transactionalID) closed inside a transaction"))
            deliver()
        }
        if let identity {
            log.transactions.release(transactionalID: transactionalID, producerID: identity.producerID, epoch: identity.epoch)
        }
        move(.close)
    }
}
