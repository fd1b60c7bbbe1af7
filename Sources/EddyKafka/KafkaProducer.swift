import CRdKafka
import EddyCore

/// ``LogProducer`` and ``TransactionalProducer`` over one librdkafka producer handle.
///
/// Confined to one thread: delivery handlers run on it, inside `send` (when the local queue is
/// full), `poll`, `flush` and the transaction calls. Every record's delivery report is served:
/// failures go to its handler *and* the first one is thrown by the next `flush` (or
/// `commitTransaction`), so none is dropped.
final class KafkaProducer: TransactionalProducer {
    /// How often a transactional call that librdkafka reports as retriable is retried.
    static let maximumTransactionRetries = 5

    /// The transaction lifecycle; ``transition(_:)`` holds the legal moves.
    enum State: Equatable {
        case plain              // not transactional
        case uninitialized      // transactional, before initTransactions
        case ready              // no open transaction
        case inTransaction
        case abortRequired      // an abortable error happened: only abortTransaction is allowed
        case fatal              // fenced or otherwise fatal: only close is allowed
        case closed
    }

    private let log: KafkaLog
    private let client: RDKafkaClient
    private let configuration: ProducerConfiguration
    let transactionalID: String
    private(set) var state: State
    private var partitionCounts: [String: Int] = [:]
    /// The last topic sent to and its partition count: spares a hash per record.
    private var lastTopic: (name: String, count: Int)?
    /// Reused argument vector for `rd_kafka_produceva` (no allocation per record).
    private let values = UnsafeMutablePointer<rd_kafka_vu_t>.allocate(capacity: 8)
    private var pending = 0
    private var firstFailure: EddyError?

    init(log: KafkaLog, configuration: ProducerConfiguration, transactionalID: String?) throws {
        self.log = log
        self.configuration = configuration
        self.transactionalID = transactionalID ?? ""
        state = transactionalID == nil ? .plain : .uninitialized
        var properties = log.configuration.properties
        properties["client.id"] = configuration.clientID
        properties["enable.idempotence"] = configuration.idempotent || transactionalID != nil ? "true" : "false"
        properties["linger.ms"] = String(configuration.lingerMilliseconds)
        properties["batch.size"] = String(max(configuration.batchBytes, 1))
        properties["compression.codec"] = configuration.compression.rawValue
        properties["message.timeout.ms"] = String(max(configuration.timeoutMilliseconds, 1))
        // Java's partitioner: murmur2 of the key, like the embedded log's DefaultPartitioner.
        properties["partitioner"] = "murmur2_random"
        if let transactionalID {
            properties["transactional.id"] = transactionalID
            properties["transaction.timeout.ms"] = String(max(configuration.timeoutMilliseconds, 1_000))
        }
        for (key, value) in configuration.extra { properties[key] = value }
        let context = RDKafkaClientContext(logLevel: log.configuration.logLevel)
        client = try RDKafkaClient(kind: .producer, properties: properties, context: context)
        context.delivery = { [unowned self] err, message in self.delivered(err, message) }
    }

    deinit {
        client.context.delivery = nil
        values.deallocate()
    }

    /// Moves the transaction state machine, refusing illegal moves with ``EddyError/Code/invalidState``.
    private func transition(_ next: State) throws {
        let legal: Bool
        switch (state, next) {
        case (.uninitialized, .ready), (.ready, .inTransaction), (.inTransaction, .ready),
             (.inTransaction, .abortRequired), (.abortRequired, .ready), (.ready, .ready): legal = true
        case (_, .fatal), (_, .closed): legal = true
        default: legal = false
        }
        guard legal else {
            throw EddyError(.invalidState, "transactional producer \(transactionalID): cannot go from \(state) to \(next)")
        }
        state = next
    }

    private func checkUsable() throws {
        if state == .closed { throw EddyError(.closed, "producer is closed") }
        if let fatal = client.context.fatalError {
            state = .fatal
            throw fatal
        }
        if state == .fatal { throw EddyError(.producerFenced, "producer \(transactionalID) hit a fatal error; close it") }
    }

    // MARK: - LogProducer

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws {
        try checkUsable()
        switch state {
        case .uninitialized: throw EddyError(.invalidState, "call initTransactions() before sending")
        case .ready: throw EddyError(.invalidState, "transactional producer: call beginTransaction() before sending")
        case .abortRequired: throw EddyError(.transactionAborted, "the transaction must be aborted before sending more")
        default: break
        }
        let count = try partitionCount(of: record.topic)
        if let p = record.partition, p < 0 || p >= count {
            throw EddyError(.unknownPartition, "topic \(record.topic) has no partition \(p) (it has \(count))")
        }
        let opaque = delivery.map { Unmanaged.passRetained(DeliveryBox($0)).toOpaque() }
        var attempts = 0
        while true {
            let err = produce(record, opaque: opaque)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { break }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL && attempts < 1_000 {
                // Serve delivery reports to make room, as librdkafka's docs prescribe.
                attempts += 1
                rd_kafka_poll(client.handle, 10)
                continue
            }
            if let opaque { Unmanaged<DeliveryBox>.fromOpaque(opaque).release() }
            if err == RD_KAFKA_RESP_ERR__STATE && state == .inTransaction {
                // librdkafka refuses records once the open transaction hit an abortable error
                // (e.g. a failed AddPartitionsToTxn): say so, as commit would.
                try checkUsable()
                try transition(.abortRequired)
                throw EddyError(.transactionAborted, "send to \(record.topic): the transaction hit an abortable error and must be aborted")
            }
            throw RDKafkaError.error(err, "send to \(record.topic)", redactor: client.redactor)
        }
        pending += 1
    }

    /// `rd_kafka_produceva` with a copied key, value and headers (`RD_KAFKA_MSG_F_COPY`).
    private func produce(_ record: ProducerRecord, opaque: UnsafeMutableRawPointer?) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    value.withUnsafeBytes { bytes in
                        _ = rd_kafka_header_add(headers, header.key, -1, bytes.baseAddress ?? emptyBytes, bytes.count)
                    }
                } else {
                    _ = rd_kafka_header_add(headers, header.key, -1, nil, 0)
                }
            }
        }
        let err: rd_kafka_resp_err_t = record.topic.withCString { topic in
            withOptionalBytes(record.key) { key in
                withOptionalBytes(record.value) { value in
                    var n = 0
                    values[n].vtype = RD_KAFKA_VTYPE_TOPIC; values[n].u.cstr = topic; n += 1
                    values[n].vtype = RD_KAFKA_VTYPE_PARTITION
                    values[n].u.i32 = record.partition.map(Int32.init) ?? RD_KAFKA_PARTITION_UA; n += 1
                    values[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS; values[n].u.i = RD_KAFKA_MSG_F_COPY; n += 1
                    if let value {
                        values[n].vtype = RD_KAFKA_VTYPE_VALUE
                        values[n].u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress ?? emptyBytes)
                        values[n].u.mem.size = value.count; n += 1
                    }
                    if let key {
                        values[n].vtype = RD_KAFKA_VTYPE_KEY
                        values[n].u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress ?? emptyBytes)
                        values[n].u.mem.size = key.count; n += 1
                    }
                    if let timestamp = record.timestamp {
                        values[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP; values[n].u.i64 = timestamp; n += 1
                    }
                    if let headers {
                        values[n].vtype = RD_KAFKA_VTYPE_HEADERS; values[n].u.headers = headers; n += 1
                    }
                    if let opaque {
                        values[n].vtype = RD_KAFKA_VTYPE_OPAQUE; values[n].u.ptr = opaque; n += 1
                    }
                    guard let error = rd_kafka_produceva(client.handle, values, n) else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                    let code = rd_kafka_error_code(error)
                    rd_kafka_error_destroy(error)
                    return code
                }
            }
        }
        // On success librdkafka owns the headers; on failure they are still ours.
        if err != RD_KAFKA_RESP_ERR_NO_ERROR, let headers { rd_kafka_headers_destroy(headers) }
        return err
    }

    /// The delivery report of one record (dr_msg_cb, this producer's thread).
    private func delivered(_ err: rd_kafka_resp_err_t, _ message: UnsafePointer<rd_kafka_message_t>) {
        pending -= 1
        let opaque = message.pointee._private
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            // The common case with no handler costs nothing more than the counter.
            guard let opaque else { return }
            let topic = String(cString: rd_kafka_topic_name(message.pointee.rkt))
            let timestamp = rd_kafka_message_timestamp(message, nil)
            let metadata = RecordMetadata(topicPartition: TopicPartition(topic, Int(message.pointee.partition)),
                                          offset: message.pointee.offset, timestamp: timestamp)
            Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue().handler(.success(metadata))
        } else {
            let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
            let error = RDKafkaError.error(err, "delivery to \(topic)-\(message.pointee.partition)", redactor: client.redactor)
            if firstFailure == nil { firstFailure = error }
            if let opaque { Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue().handler(.failure(error)) }
        }
    }

    func flush() throws {
        if state == .closed { throw EddyError(.closed, "producer is closed") }
        try drain()
    }

    /// Waits for every outstanding delivery report (`rd_kafka_flush`), then throws the first failure.
    private func drain() throws {
        let started = monotonicMilliseconds()
        while pending > 0 {
            let left = Int64(configuration.timeoutMilliseconds) - (monotonicMilliseconds() - started)
            if left <= 0 {
                throw EddyError(.timeout, "\(pending) records not acknowledged within \(configuration.timeoutMilliseconds) ms")
            }
            _ = rd_kafka_flush(client.handle, Int32(min(left, 1_000)))
        }
        if let failure = firstFailure {
            firstFailure = nil
            throw failure
        }
    }

    func poll() {
        guard state != .closed else { return }
        rd_kafka_poll(client.handle, 0)
    }

    func partitionCount(of topic: String) throws -> Int {
        if let last = lastTopic, last.name == topic { return last.count }
        if let count = partitionCounts[topic] {
            lastTopic = (topic, count)
            return count
        }
        let count = try log.partitionCount(of: topic)
        partitionCounts[topic] = count
        lastTopic = (topic, count)
        return count
    }

    func close() throws {
        guard state != .closed else { return }
        defer {
            state = .closed
            // Records still queued (after a failure or timeout) fail with "purged"; serve their
            // reports so no handler is left without an answer.
            _ = rd_kafka_purge(client.handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            rd_kafka_poll(client.handle, 0)
        }
        if state == .fatal || state == .inTransaction || state == .abortRequired { return }
        try drain()
    }

    // MARK: - TransactionalProducer

    private func requireTransactional() throws {
        guard state != .plain else { throw EddyError(.invalidState, "not a transactional producer") }
        try checkUsable()
    }

    /// Runs a transactional call (which returns an `rd_kafka_error_t`), retrying what librdkafka
    /// reports as retriable, and moves the state machine on abortable and fatal errors.
    private func transactional(_ what: String, _ call: () -> OpaquePointer?) throws {
        var attempt = 0
        while true {
            guard let raw = call() else { return }
            let error = RDKafkaError.consume(raw, "\(what) (transactional id \(transactionalID))", redactor: client.redactor)
            switch error.code {
            case .retriable where attempt < Self.maximumTransactionRetries:
                attempt += 1
                continue
            case .producerFenced:
                try? transition(.fatal)
            case .transactionAborted:
                if state == .inTransaction { try? transition(.abortRequired) }
            default:
                break
            }
            throw error
        }
    }

    /// `rd_kafka_init_transactions`.
    func initTransactions() throws {
        try requireTransactional()
        guard state == .uninitialized else { throw EddyError(.invalidState, "initTransactions() was already called") }
        try transactional("init transactions") { rd_kafka_init_transactions(client.handle, Int32(configuration.timeoutMilliseconds)) }
        try transition(.ready)
    }

    /// `rd_kafka_begin_transaction`.
    func beginTransaction() throws {
        try requireTransactional()
        guard state == .ready else { throw EddyError(.invalidState, "cannot begin a transaction in state \(state)") }
        try transactional("begin transaction") { rd_kafka_begin_transaction(client.handle) }
        try transition(.inTransaction)
    }

    /// `rd_kafka_send_offsets_to_transaction`.
    func sendOffsetsToTransaction(_ offsets: [TopicPartition: Offset], group: ConsumerGroupMetadata) throws {
        try sendOffsetsToTransaction(offsets.mapValues { OffsetAndMetadata($0) }, group: group)
    }

    /// `rd_kafka_send_offsets_to_transaction` with each element's `metadata` set (the broker
    /// stores it with the offset when the transaction commits) and the group metadata rebuilt
    /// from `group` (`rd_kafka_consumer_group_metadata_new_with_genid`).
    func sendOffsetsToTransaction(_ offsets: [TopicPartition: OffsetAndMetadata], group: ConsumerGroupMetadata) throws {
        try requireTransactional()
        guard state == .inTransaction else { throw EddyError(.invalidState, "no open transaction (state \(state))") }
        guard !offsets.isEmpty else { return }
        try OffsetAndMetadata.validate(offsets)
        let list = RDKafkaTopicPartitionList(offsets)
        guard let metadata = rd_kafka_consumer_group_metadata_new_with_genid(group.groupID, Int32(group.generation),
                                                                             group.memberID, nil) else {
            throw EddyError(.invalidArgument, "group metadata for \(group.groupID)")
        }
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        try transactional("send offsets to transaction") {
            rd_kafka_send_offsets_to_transaction(client.handle, list.pointer, metadata, Int32(configuration.timeoutMilliseconds))
        }
    }

    /// `rd_kafka_commit_transaction` (which flushes first). A record that failed delivery makes
    /// librdkafka fail the commit with an abortable error.
    func commitTransaction() throws {
        try requireTransactional()
        guard state == .inTransaction else { throw EddyError(.invalidState, "no open transaction (state \(state))") }
        try transactional("commit transaction") { rd_kafka_commit_transaction(client.handle, Int32(configuration.timeoutMilliseconds)) }
        rd_kafka_poll(client.handle, 0)
        pending = max(pending, 0)
        firstFailure = nil
        try transition(.ready)
    }

    /// `rd_kafka_abort_transaction` (purges queued records, whose reports fail as purged).
    func abortTransaction() throws {
        try requireTransactional()
        guard state == .inTransaction || state == .abortRequired else {
            throw EddyError(.invalidState, "no transaction to abort (state \(state))")
        }
        try transactional("abort transaction") { rd_kafka_abort_transaction(client.handle, Int32(configuration.timeoutMilliseconds)) }
        rd_kafka_poll(client.handle, 0)
        firstFailure = nil
        try transition(.ready)
    }
}

/// A delivery handler travelling through librdkafka as a record's opaque pointer: retained at
/// `send`, released by the delivery report (on the producer's thread).
private final class DeliveryBox {
    let handler: DeliveryHandler
    init(_ handler: @escaping DeliveryHandler) { self.handler = handler }
}

/// A non-null address for empty keys, values and header values (NULL means "absent" to librdkafka).
nonisolated(unsafe) private let emptyBytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

func monotonicMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Int64(time.tv_sec) * 1_000 + Int64(time.tv_nsec) / 1_000_000
}

#if canImport(Glibc)
import Glibc
#endif
