import EddyCore
@testable import EddyKafka
import Foundation
import Testing

/// Records every rebalance callback, with the thread it ran on.
final class RecordingListener: RebalanceListener {
    var assigned: [[TopicPartition]] = []
    var revoked: [[TopicPartition]] = []
    var threads: Set<String> = []
    func partitionsAssigned(_ partitions: [TopicPartition]) {
        assigned.append(partitions)
        threads.insert("\(Thread.current)")
    }
    func partitionsRevoked(_ partitions: [TopicPartition]) {
        revoked.append(partitions)
        threads.insert("\(Thread.current)")
    }
}

@Suite struct KafkaConsumerGroupTests {
    /// Polls both consumers until `done` holds or the deadline passes.
    func pollBoth(_ a: any LogConsumer, _ b: (any LogConsumer)?, seconds: Int, until done: () -> Bool) throws {
        let deadline = monotonicMilliseconds() + Int64(seconds) * 1_000
        while monotonicMilliseconds() < deadline && !done() {
            _ = try a.poll(timeoutMilliseconds: 50)
            _ = try b?.poll(timeoutMilliseconds: 50)
        }
    }

    @Test func twoConsumersOfOneGroupSplitPartitionsWithTheRangeAssignorAndRebalanceWhenOneLeaves() throws {
        let log = SharedMockCluster.log
        let orders = uniqueName("orders")
        let payments = uniqueName("payments")
        try log.admin.createTopic(orders, configuration: TopicConfiguration(partitions: 4))
        try log.admin.createTopic(payments, configuration: TopicConfiguration(partitions: 4))
        let group = uniqueName("split")
        let configuration = ConsumerConfiguration(groupID: group, sessionTimeoutMilliseconds: 6_000)
        let first = try log.makeConsumer(configuration)
        let second = try log.makeConsumer(configuration)
        let firstListener = RecordingListener()
        let secondListener = RecordingListener()
        try first.subscribe([orders, payments], listener: firstListener)
        try second.subscribe([orders, payments], listener: secondListener)
        try pollBoth(first, second, seconds: 30) {
            first.assignment().count == 4 && second.assignment().count == 4
        }
        let a = first.assignment()
        let b = second.assignment()
        #expect(a.count == 4 && b.count == 4, "\(a) / \(b)")
        #expect(Set(a).isDisjoint(with: b))
        // Range assignor: partition i of both co-partitioned topics goes to the same member.
        #expect(Set(a.filter { $0.topic == orders }.map(\.partition)) == Set(a.filter { $0.topic == payments }.map(\.partition)))
        #expect(!firstListener.assigned.isEmpty && !secondListener.assigned.isEmpty)
        // The rebalance callbacks ran on this (the polling) thread.
        #expect(firstListener.threads == ["\(Thread.current)"])

        try second.close()
        try pollBoth(first, nil, seconds: 30) { first.assignment().count == 8 }
        #expect(first.assignment().count == 8)
        #expect(!firstListener.revoked.isEmpty)
        #expect(!secondListener.revoked.isEmpty, "close revokes the leaving member's partitions")
        let metadata = try #require(first.groupMetadata())
        #expect(metadata.groupID == group && metadata.generation >= 2)
        try first.close()
    }
}
