import EddyCore
@testable import EddyKafka
import Foundation
import Testing

/// Faults injected into a private mock cluster per test (broker down, pushed request errors),
/// so one test's faults never reach another's requests.
@Suite struct KafkaFaultInjectionTests {
    @Test func aBrokerTakenDownDuringProductionLosesAndDuplicatesNothing() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        let log = try KafkaLog(mockCluster: cluster)
        let topic = uniqueName("failover")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 3))
        let producer = try log.makeProducer(ProducerConfiguration(lingerMilliseconds: 2))
        var failures: [EddyError] = []
        let total = 3_000
        for i in 0..<total {
            try producer.send(ProducerRecord(topic: topic, partition: i % 3, value: kafkaPayload("\(i)"))) { result in
                if case .failure(let error) = result { failures.append(error) }
            }
            if i == 1_000 {
                producer.poll()
                try cluster.setBrokerDown(1)
                // Leadership moves off the dead broker, as a controller would move it.
                for p in 0..<3 { try cluster.setLeader(TopicPartition(topic, p), broker: 2 + p % 2) }
            }
            if i == 2_000 { try cluster.setBrokerUp(1) }
        }
        try producer.flush()
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign((0..<3).map { TopicPartition(topic, $0) })
        // Generous: the fetches after a leadership move are slow when CI runs suites in parallel
        // (20 s once returned 2,351 of 3,000 records); a passing run returns as soon as all arrive.
        let records = try pollKafka(consumer, count: total, timeoutMilliseconds: 60_000)
        let values = records.map { Int(String(decoding: $0.value!, as: UTF8.self))! }
        #expect(values.count == total, "got \(values.count) of \(total)")
        #expect(Set(values).count == values.count, "duplicates")
        #expect(Set(values) == Set(0..<total))
        // Per partition, idempotence keeps the send order.
        for p in 0..<3 {
            let inPartition = records.filter { $0.partition == p }.map { Int(String(decoding: $0.value!, as: UTF8.self))! }
            #expect(inPartition == inPartition.sorted())
        }
    }

    @Test func retriableProduceErrorsAreRetriedWithoutDuplicates() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let log = try KafkaLog(mockCluster: cluster)
        let topic = uniqueName("retry")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        cluster.pushRequestErrors(.produce, [.notLeaderForPartition, .notEnoughReplicas, .requestTimedOut])
        let producer = try log.makeProducer(ProducerConfiguration())
        for i in 0..<10 { try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("\(i)"))) }
        try producer.flush()
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0)])
        let records = try pollKafka(consumer, count: 10)
        #expect(records.map { String(decoding: $0.value!, as: UTF8.self) } == (0..<10).map(String.init))
    }

    @Test func transactionsCommitAndAbortAndRetryRetriableEndTxnErrors() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let log = try KafkaLog(mockCluster: cluster)
        let topic = uniqueName("txn")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 2))
        let producer = try log.makeTransactionalProducer(ProducerConfiguration(timeoutMilliseconds: 10_000),
                                                         transactionalID: uniqueName("tx"))
        expectKafkaError(.invalidState) { try producer.beginTransaction() }
        try producer.initTransactions()
        try producer.beginTransaction()
        for i in 0..<5 { try producer.send(ProducerRecord(topic: topic, partition: i % 2, value: kafkaPayload("c\(i)"))) }
        // The coordinator is busy twice: librdkafka retries EndTxn by itself.
        cluster.pushRequestErrors(.endTransaction, [.concurrentTransactions, .coordinatorLoadInProgress])
        try producer.commitTransaction()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, partition: 0, value: kafkaPayload("aborted")))
        try producer.abortTransaction()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, partition: 1, value: kafkaPayload("c5")))
        try producer.commitTransaction()
        try producer.close()

        let consumer = try log.makeConsumer(ConsumerConfiguration(isolation: .readUncommitted))
        try consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        let values = Set(try pollKafka(consumer, count: 7).map { String(decoding: $0.value!, as: UTF8.self) })
        #expect(values.isSuperset(of: ["c0", "c1", "c2", "c3", "c4", "c5"]))
        // MOCK LIMIT: the mock does not hide aborted records from read_committed readers, so
        // "aborted" is visible here (read_uncommitted) and would be on read_committed too;
        // exactly-once visibility is proven on the embedded log.
    }

    @Test func anAbortableAddPartitionsErrorSurfacesAsTransactionAbortedAndAbortRecovers() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let log = try KafkaLog(mockCluster: cluster)
        let topic = uniqueName("abortable")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        let producer = try log.makeTransactionalProducer(ProducerConfiguration(timeoutMilliseconds: 10_000),
                                                         transactionalID: uniqueName("tx"))
        try producer.initTransactions()
        try producer.beginTransaction()
        // TOPIC_AUTHORIZATION_FAILED (29) on AddPartitionsToTxn is abortable in librdkafka.
        cluster.pushRequestErrors(.addPartitionsToTransaction, [KafkaErrorCode(rawValue: 29)])
        try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("doomed")))
        var thrown: EddyError?
        do { try producer.commitTransaction() } catch let error as EddyError { thrown = error }
        #expect(thrown?.code == .transactionAborted, "\(String(describing: thrown))")
        #expect(thrown?.isAbortable == true)
        expectKafkaError(.transactionAborted) { try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("more"))) }
        try producer.abortTransaction()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("fine")))
        try producer.commitTransaction()
    }

    @Test func aFencedProducerSurfacesAsProducerFencedAndRefusesWork() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let log = try KafkaLog(mockCluster: cluster)
        let topic = uniqueName("fenced")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        let producer = try log.makeTransactionalProducer(ProducerConfiguration(timeoutMilliseconds: 10_000),
                                                         transactionalID: uniqueName("tx"))
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("zombie")))
        // MOCK LIMIT: the mock never fences a second producer with the same transactional id,
        // so the fencing answer is injected: PRODUCER_FENCED on EndTxn is fatal in librdkafka.
        cluster.pushRequestErrors(.endTransaction, [.producerFenced])
        var thrown: EddyError?
        do { try producer.commitTransaction() } catch let error as EddyError { thrown = error }
        #expect(thrown?.code == .producerFenced, "\(String(describing: thrown))")
        #expect(thrown?.isFatal == true)
        expectKafkaError(.producerFenced) { try producer.beginTransaction() }
        try producer.close()
    }

    @Test func offsetsAreSentToTheTransactionWithTheConsumersGroupMetadata() throws {
        let cluster = SharedMockCluster.cluster
        let log = SharedMockCluster.log
        let topic = uniqueName("eos-input")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        let group = uniqueName("eos-group")
        let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.subscribe([topic], listener: nil)
        var metadata: ConsumerGroupMetadata?
        let deadline = monotonicMilliseconds() + 15_000
        while monotonicMilliseconds() < deadline {
            _ = try consumer.poll(timeoutMilliseconds: 100)
            if !consumer.assignment().isEmpty, let m = consumer.groupMetadata(), m.generation > 0 { metadata = m; break }
        }
        let groupMetadata = try #require(metadata)
        #expect(groupMetadata.groupID == group && !groupMetadata.memberID.isEmpty)
        let producer = try log.makeTransactionalProducer(ProducerConfiguration(timeoutMilliseconds: 10_000),
                                                         transactionalID: uniqueName("tx"))
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.sendOffsetsToTransaction([TopicPartition(topic, 0): 0], group: groupMetadata)
        try producer.commitTransaction()
        // MOCK LIMIT: the mock does not store offsets sent with send_offsets_to_transaction (it
        // answers TxnOffsetCommit without keeping them), so they are not read back here.
        _ = cluster
        try consumer.close()
        try producer.close()
    }
}
