import EddyCore
import EddyLog
#if canImport(Glibc)
import Glibc
#endif

/// `EddyTestChild eos-copy DIR TOTAL`: copies topic `in` to topic `out` exactly once, as a
/// consume-transform-produce loop: each poll's records are sent to `out` and the consumer's
/// offsets added to the same transaction, which then commits. Prints `committed N` after each
/// commit and `done` once the group has committed all TOTAL input records. The parent kills it
/// with SIGKILL at random moments and restarts it; `out` must hold every input record once.
enum EOSCopyMode {
    static func run(_ arguments: [String]) -> Never {
        guard arguments.count == 2, let total = Int64(arguments[1]) else {
            FileHandleOutput.error("usage: EddyTestChild eos-copy DIRECTORY TOTAL")
            exit(2)
        }
        do {
            let log = try EmbeddedLog(directory: arguments[0])
            let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: "eos-copy", maximumPollRecords: 50))
            try consumer.subscribe(["in"], listener: nil)
            let producer = try log.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "eos-copy")
            try producer.initTransactions()
            let partitions = try (0..<producer.partitionCount(of: "in")).map { TopicPartition("in", $0) }
            while true {
                let records = try consumer.poll(timeoutMilliseconds: 50)
                if records.isEmpty {
                    let committed = try consumer.committed(partitions).values.reduce(0, +)
                    if committed >= total {
                        FileHandleOutput.line("done")
                        try log.close()
                        exit(0)
                    }
                    continue
                }
                try producer.beginTransaction()
                var next: [TopicPartition: Offset] = [:]
                for record in records {
                    try producer.send(ProducerRecord(topic: "out", partition: record.partition, key: record.key,
                                                     value: record.value, timestamp: record.timestamp))
                    next[record.topicPartition] = record.offset + 1
                }
                try producer.sendOffsetsToTransaction(next, group: consumer.groupMetadata()!)
                try producer.commitTransaction()
                FileHandleOutput.line("committed \(records.count)")
            }
        } catch {
            FileHandleOutput.line("error \(error)")
            exit(3)
        }
    }
}
