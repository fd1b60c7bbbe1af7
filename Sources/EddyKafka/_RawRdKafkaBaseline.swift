import CRdKafka
import EddyCore

/// A plain C-level librdkafka produce and consume loop, the baseline `eddy bench kafka` compares
/// ``KafkaLog`` with. Underscored: no API promise; it exists here because only EddyKafka may
/// import CRdKafka.
///
/// Both loops use the settings ``KafkaLog`` uses by default (idempotent producer, `linger.ms=5`,
/// `batch.size` 64 KiB, `rd_kafka_produceva` with copied values; consumer batches from
/// `rd_kafka_consume_batch_queue`). The consume loop reads what a consumer of Eddy's records
/// needs from librdkafka — key and value lengths, the timestamp (`rd_kafka_message_timestamp`)
/// and the headers (`rd_kafka_message_headers`, `rd_kafka_header_get_all`) — but copies nothing.
/// With `headers: false` it skips the header look-up (which alone costs librdkafka about as
/// much as the rest of the loop: it parses each record's header block into a new list).
public enum _RawRdKafkaBaseline {
    /// Produces `records` values of `recordBytes` bytes round-robin over `partitions` partitions
    /// of `topic` and waits for every delivery report. Returns the seconds taken.
    public static func produce(bootstrapServers: String, topic: String, records: Int, recordBytes: Int,
                               partitions: Int) throws -> Double {
        let context = RDKafkaClientContext(logLevel: 3)
        var failures = 0
        context.delivery = { err, _ in if err != RD_KAFKA_RESP_ERR_NO_ERROR { failures += 1 } }
        let client = try RDKafkaClient(kind: .producer, properties: [
            "bootstrap.servers": bootstrapServers, "enable.idempotence": "true", "linger.ms": "5",
            "batch.size": String(64 * 1024), "log_level": "3",
        ], context: context)
        let value = [UInt8](repeating: 0x61, count: recordBytes)
        let started = monotonicMilliseconds()
        try topic.withCString { name in
            try value.withUnsafeBytes { bytes in
                var values = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 4)
                values[0].vtype = RD_KAFKA_VTYPE_TOPIC; values[0].u.cstr = name
                values[1].vtype = RD_KAFKA_VTYPE_PARTITION
                values[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS; values[2].u.i = RD_KAFKA_MSG_F_COPY
                values[3].vtype = RD_KAFKA_VTYPE_VALUE
                values[3].u.mem.ptr = UnsafeMutableRawPointer(mutating: bytes.baseAddress!)
                values[3].u.mem.size = bytes.count
                for i in 0..<records {
                    values[1].u.i32 = Int32(i % partitions)
                    while let error = rd_kafka_produceva(client.handle, &values, 4) {
                        let code = rd_kafka_error_code(error)
                        rd_kafka_error_destroy(error)
                        guard code == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw RDKafkaError.error(code, "baseline produce") }
                        rd_kafka_poll(client.handle, 10)
                    }
                }
            }
        }
        while rd_kafka_outq_len(client.handle) > 0 { _ = rd_kafka_flush(client.handle, 1_000) }
        let seconds = Double(monotonicMilliseconds() - started) / 1_000
        context.delivery = nil
        if failures > 0 { throw EddyError(.io, "baseline: \(failures) deliveries failed") }
        return seconds
    }

    /// Consumes `records` records from the beginning of all `partitions` partitions of `topic`.
    /// Returns the seconds taken.
    public static func consume(bootstrapServers: String, topic: String, records: Int, partitions: Int,
                               headers: Bool = true) throws -> Double {
        let client = try RDKafkaClient(kind: .consumer, properties: [
            "bootstrap.servers": bootstrapServers, "group.id": "eddy-baseline-\(UInt32.random(in: 0...UInt32.max))",
            "enable.auto.commit": "false", "auto.offset.reset": "earliest", "log_level": "3",
        ], context: RDKafkaClientContext(logLevel: 3))
        let list = RDKafkaTopicPartitionList((0..<partitions).map { TopicPartition(topic, $0) },
                                             offset: Int64(RD_KAFKA_OFFSET_BEGINNING))
        rd_kafka_assign(client.handle, list.pointer)
        guard let queue = rd_kafka_queue_get_consumer(client.handle) else { throw EddyError(.invalidState, "no consumer queue") }
        defer { rd_kafka_queue_destroy(queue); rd_kafka_consumer_close(client.handle) }
        var buffer = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: 10_000)
        var received = 0
        var bytes = 0
        let started = monotonicMilliseconds()
        while received < records {
            if monotonicMilliseconds() - started > 120_000 { throw EddyError(.timeout, "baseline consumed \(received) of \(records)") }
            guard let first = rd_kafka_consumer_poll(client.handle, 1_000) else { continue }
            if first.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR { received += 1; bytes &+= touch(first, headers: headers) }
            rd_kafka_message_destroy(first)
            while true {
                let count = buffer.withUnsafeMutableBufferPointer { rd_kafka_consume_batch_queue(queue, 0, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                for i in 0..<count {
                    guard let message = buffer[i] else { continue }
                    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR { received += 1; bytes &+= touch(message, headers: headers) }
                    rd_kafka_message_destroy(message)
                }
            }
        }
        return Double(monotonicMilliseconds() - started) / 1_000
    }

    /// Reads a message's fields the way a consumer that delivers them must, copying nothing.
    @inline(__always)
    private static func touch(_ message: UnsafeMutablePointer<rd_kafka_message_t>, headers: Bool) -> Int {
        var total = message.pointee.len &+ message.pointee.key_len
        total &+= Int(truncatingIfNeeded: rd_kafka_message_timestamp(message, nil))
        guard headers else { return total }
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                total &+= size
                index += 1
            }
        }
        return total
    }
}
