import CRdKafka
import EddyCore
import Foundation

/// An owned `rd_kafka_t` (`rd_kafka_new`, destroyed with `rd_kafka_destroy`) with its callback
/// context. librdkafka handles are thread-safe; the Swift objects that own one decide which
/// thread uses it.
final class RDKafkaClient: @unchecked Sendable {
    // @unchecked Sendable: `handle` is a librdkafka handle whose functions are thread-safe, and
    // `context` is itself Sendable-by-contract (see RDKafkaClientContext). Nothing else is stored.
    enum Kind { case producer, consumer }

    let handle: OpaquePointer
    let context: RDKafkaClientContext
    let redactor: SecretRedactor

    /// Builds a configuration (`rd_kafka_conf_new`, `rd_kafka_conf_set` per property,
    /// `rd_kafka_conf_set_opaque`, the log/error/delivery/rebalance callbacks) and the client
    /// (`rd_kafka_new`). Errors name the property but never quote a secret value.
    init(kind: Kind, properties: [String: String], context: RDKafkaClientContext) throws {
        let redactor = SecretRedactor(properties: properties)
        self.redactor = redactor
        let conf = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let detail = SecretRedactor.isSecret(key) ? "invalid value (redacted)"
                    : redactor.redact(cText(errorText))
                throw EddyError(.invalidArgument, "Kafka configuration property \(key): \(detail)")
            }
        }
        context.redactor = redactor
        // The context outlives the handle: it is retained here and released in deinit after
        // rd_kafka_destroy returned, when no callback can run any more.
        rd_kafka_conf_set_opaque(conf, Unmanaged.passRetained(context).toOpaque())
        rd_kafka_conf_set_log_cb(conf, rdkafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, rdkafkaErrorCallback)
        if kind == .producer {
            rd_kafka_conf_set_dr_msg_cb(conf, rdkafkaDeliveryCallback)
        } else {
            rd_kafka_conf_set_rebalance_cb(conf, rdkafkaRebalanceCallback)
        }
        guard let handle = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf,
                                        &errorText, errorText.count) else {
            // rd_kafka_new destroys nothing on failure: the configuration is still ours.
            rd_kafka_conf_destroy(conf)
            Unmanaged.passUnretained(context).release()
            throw EddyError(.invalidArgument, "Kafka client: \(redactor.redact(cText(errorText)))")
        }
        self.handle = handle
        self.context = context
        if kind == .consumer {
            // Serve logs, errors and rebalances from the consumer queue, i.e. inside poll.
            rd_kafka_poll_set_consumer(handle)
        }
    }

    deinit {
        rd_kafka_destroy(handle)
        Unmanaged.passUnretained(context).release()
    }

    /// Partition count of `topic` from an all-topics metadata request (`rd_kafka_metadata`).
    /// Throws ``EddyError/Code/unknownTopic`` if the cluster does not know it.
    ///
    /// Why all topics: a metadata request naming one topic makes brokers that do not honour
    /// `allow.auto.create.topics=false` (older brokers, and librdkafka's mock cluster, whose
    /// Metadata API predates the flag) create the topic; listing all topics creates nothing.
    func partitionCount(of topic: String, timeoutMilliseconds: Int) throws -> Int {
        guard let count = try allTopics(timeoutMilliseconds: timeoutMilliseconds)[topic] else {
            throw EddyError(.unknownTopic, "unknown topic \(topic)")
        }
        return count
    }

    /// Names and partition counts of all topics (`rd_kafka_metadata` with all_topics).
    func allTopics(timeoutMilliseconds: Int) throws -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 1, nil, &metadata, Int32(timeoutMilliseconds))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw RDKafkaError.error(err, "cluster metadata", redactor: redactor)
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var topics: [String: Int] = [:]
        for i in 0..<Int(metadata.pointee.topic_cnt) {
            let t = metadata.pointee.topics[i]
            if t.err == RD_KAFKA_RESP_ERR_NO_ERROR { topics[String(cString: t.topic)] = Int(t.partition_cnt) }
        }
        return topics
    }

    /// Low and high watermark of a partition (`rd_kafka_query_watermark_offsets`). For a client
    /// configured `isolation.level=read_committed` the high mark is the last stable offset.
    func watermarks(_ partition: TopicPartition, timeoutMilliseconds: Int) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(handle, partition.topic, Int32(partition.partition), &low, &high,
                                                   Int32(timeoutMilliseconds))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw RDKafkaError.error(err, "watermark offsets of \(partition)", redactor: redactor)
        }
        return (low, high)
    }

    /// `rd_kafka_offsets_for_times`: first offset per partition with a timestamp >= the given
    /// one; `nil` when there is none.
    func offsets(forTimes times: [TopicPartition: Timestamp], timeoutMilliseconds: Int) throws -> [TopicPartition: Offset?] {
        let list = RDKafkaTopicPartitionList(times)
        let err = rd_kafka_offsets_for_times(handle, list.pointer, Int32(timeoutMilliseconds))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw RDKafkaError.error(err, "offsets for times", redactor: redactor)
        }
        try list.checkErrors("offset for time of")
        var result: [TopicPartition: Offset?] = [:]
        for e in list.elements { result[e.topicPartition] = e.offset >= 0 ? .some(e.offset) : .some(nil) }
        return result
    }
}

/// Everything librdkafka's C callbacks reach, through the opaque pointer of the client's
/// configuration (`rd_kafka_conf_set_opaque`).
///
/// Lifetime: retained by ``RDKafkaClient`` before `rd_kafka_new` and released after
/// `rd_kafka_destroy`, so it outlives every callback.
///
/// Threads: the log callback runs on librdkafka's internal threads and touches only immutable
/// state (`redactor`, `logLevel`, set before the handle exists). Delivery reports, errors and
/// rebalances run on the thread that calls `rd_kafka_poll`/`rd_kafka_flush` (producer) or the
/// consumer poll (consumer: `rd_kafka_poll_set_consumer`), which is the one thread the owning
/// producer or consumer is confined to; the mutable fields below are only touched there.
/// That confinement is why `@unchecked Sendable` is safe.
final class RDKafkaClientContext: @unchecked Sendable {
    var redactor = SecretRedactor(properties: [:])
    let logLevel: Int32
    /// Producer: per-record delivery handling, called for every delivery report.
    var delivery: ((_ error: rd_kafka_resp_err_t, _ message: UnsafePointer<rd_kafka_message_t>) -> Void)?
    /// Consumer: the rebalance bridge (assigns/unassigns, then calls the Swift listener).
    var rebalance: ((_ handle: OpaquePointer, _ error: rd_kafka_resp_err_t,
                     _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?
    /// The first fatal error librdkafka reported through the error callback.
    var fatalError: EddyError?

    init(logLevel: Int) { self.logLevel = Int32(logLevel) }
}

/// log_cb: internal librdkafka threads. Writes redacted lines to standard error.
private func rdkafkaLogCallback(_ handle: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?,
                                _ buffer: UnsafePointer<CChar>?) {
    guard let handle, let opaque = rd_kafka_opaque(handle) else { return }
    let context = Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    guard level <= context.logLevel, let buffer else { return }
    let line = context.redactor.redact(String(cString: buffer))
    let facilityText = facility.map { String(cString: $0) } ?? "-"
    FileHandle.standardError.write(Data("librdkafka \(facilityText): \(line)\n".utf8))
}

/// error_cb: the polling thread. Remembers fatal errors (`rd_kafka_fatal_error`); others are
/// transient (librdkafka retries them) and only logged at debug level.
private func rdkafkaErrorCallback(_ handle: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?,
                                  _ opaque: UnsafeMutableRawPointer?) {
    guard let handle, let opaque else { return }
    let context = Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    if rd_kafka_resp_err_t(code) == RD_KAFKA_RESP_ERR__FATAL {
        var text = [CChar](repeating: 0, count: 512)
        let original = rd_kafka_fatal_error(handle, &text, text.count)
        let eddyError = RDKafkaError.error(original, "fatal Kafka client error",
                                           detail: context.redactor.redact(cText(text)))
        if context.fatalError == nil {
            context.fatalError = EddyError(.producerFenced == eddyError.code ? .producerFenced : eddyError.code,
                                           eddyError.message)
        }
    }
}

/// dr_msg_cb: the producer's thread, inside rd_kafka_poll / rd_kafka_flush.
private func rdkafkaDeliveryCallback(_ handle: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?,
                                     _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let opaque else { return }
    let context = Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    context.delivery?(message.pointee.err, message)
}

/// rebalance_cb: the consumer's thread, inside poll / close.
private func rdkafkaRebalanceCallback(_ handle: OpaquePointer?, _ error: rd_kafka_resp_err_t,
                                      _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                      _ opaque: UnsafeMutableRawPointer?) {
    guard let handle, let partitions, let opaque else { return }
    let context = Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    if let rebalance = context.rebalance {
        rebalance(handle, error, partitions)
    } else if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
        rd_kafka_assign(handle, partitions)
    } else {
        rd_kafka_assign(handle, nil)
    }
}
