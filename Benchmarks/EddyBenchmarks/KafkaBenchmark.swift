import EddyCore
import EddyKafka
import Foundation

/// `eddy bench kafka`: produce and consume records through ``KafkaLog`` on librdkafka's mock
/// cluster and, in the same run, through a plain C-level librdkafka loop doing the same
/// (`_RawRdKafkaBaseline`); prints records/s for both and the ratio (target: Eddy >= 90%).
///
/// Arguments: `--records N` (default 1,000,000), `--bytes B` (100), `--partitions P` (64: the
/// mock keeps only about 5 MB per partition), `--brokers N` (3).
/// A program that prints figures, not a test: machines are noisy, so compare the ratios.
public enum KafkaBenchmark {
    public static func run(arguments: [String]) throws {
        var records = 1_000_000, bytes = 100, partitions = 64, brokers = 3
        var index = 0
        while index < arguments.count {
            let name = arguments[index]
            guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else {
                throw EddyError(.invalidArgument, "bench kafka: \(name) needs a positive number")
            }
            switch name {
            case "--records": records = value
            case "--bytes": bytes = value
            case "--partitions": partitions = value
            case "--brokers": brokers = value
            default: throw EddyError(.invalidArgument, "bench kafka: unknown option \(name)")
            }
            index += 2
        }
        let cluster = try KafkaMockCluster(brokers: brokers)
        let log = try KafkaLog(mockCluster: cluster)
        print("bench kafka: \(records) records of \(bytes) bytes, \(partitions) partitions, mock cluster of \(brokers) brokers")

        // KafkaLog first, then the baseline: the baseline never runs on a warmer cluster.
        let topic = "bench-eddy"
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: partitions))
        let value = [UInt8](repeating: 0x61, count: bytes)
        var started = Date()
        let eddyProduce = try produce(log: log, topic: topic, records: records, value: value, partitions: partitions)
        let consumer = try log.makeConsumer(ConsumerConfiguration(partitionFetchMaximumBytes: 1_048_576))
        try consumer.assign((0..<partitions).map { TopicPartition(topic, $0) })
        started = Date()
        let cpuBefore = threadCPUSeconds()
        var received = 0
        var payloadBytes = 0
        var firstRecordSeconds = 0.0
        while received < records {
            if Date().timeIntervalSince(started) > 120 { throw EddyError(.timeout, "consumed \(received) of \(records)") }
            let batch = try consumer.poll(timeoutMilliseconds: 1_000)
            if received == 0 && !batch.isEmpty { firstRecordSeconds = Date().timeIntervalSince(started) }
            for record in batch {
                received += 1
                payloadBytes &+= record.value?.count ?? 0
            }
        }
        let eddyConsume = Date().timeIntervalSince(started)
        print(String(format: "KafkaLog consume: %.2f s (first record after %.2f s), of which %.2f s CPU on the polling thread",
                     eddyConsume, firstRecordSeconds, threadCPUSeconds() - cpuBefore))
        try consumer.close()

        let rawTopic = "bench-raw"
        try cluster.createTopic(rawTopic, partitions: partitions)
        let rawProduce = try _RawRdKafkaBaseline.produce(bootstrapServers: cluster.bootstrapServers, topic: rawTopic,
                                                          records: records, recordBytes: bytes, partitions: partitions)
        let rawConsume = try _RawRdKafkaBaseline.consume(bootstrapServers: cluster.bootstrapServers, topic: rawTopic,
                                                          records: records, partitions: partitions)

        let rawConsumeWithoutHeaders = try _RawRdKafkaBaseline.consume(bootstrapServers: cluster.bootstrapServers, topic: rawTopic,
                                                                        records: records, partitions: partitions, headers: false)

        func rate(_ seconds: Double) -> String { String(format: "%10.0f records/s", Double(records) / seconds) }
        print("produce  librdkafka loop \(rate(rawProduce))   KafkaLog \(rate(eddyProduce))   ratio \(String(format: "%.1f%%", rawProduce / eddyProduce * 100))")
        print("consume  librdkafka loop \(rate(rawConsume))   KafkaLog \(rate(eddyConsume))   ratio \(String(format: "%.1f%%", rawConsume / eddyConsume * 100))")
        print("(plain loop without the header look-up: \(rate(rawConsumeWithoutHeaders)); KafkaLog at \(String(format: "%.1f%%", rawConsumeWithoutHeaders / eddyConsume * 100)) of it)")
        print("target: KafkaLog >= 90% of the plain librdkafka loop")
    }
}

/// CPU seconds used by the calling thread (`getrusage(RUSAGE_THREAD)`).
func threadCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD (Linux), not imported by Glibc
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// The KafkaLog produce phase; the producer is released on return, before the consume phase.
private func produce(log: KafkaLog, topic: String, records: Int, value: [UInt8], partitions: Int) throws -> Double {
    let producer = try log.makeProducer(ProducerConfiguration(clientID: "bench", timeoutMilliseconds: 120_000))
    let started = Date()
    for i in 0..<records {
        try producer.send(ProducerRecord(topic: topic, partition: i % partitions, value: value))
    }
    let sendSeconds = Date().timeIntervalSince(started)
    try producer.flush()
    let eddyProduce = Date().timeIntervalSince(started)
    print(String(format: "KafkaLog produce: send loop %.2f s, flush %.2f s", sendSeconds, eddyProduce - sendSeconds))
    try producer.close()
    return eddyProduce
}
