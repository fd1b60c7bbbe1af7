import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// Records rebalance callbacks and the thread they ran on; optionally commits revoked
/// partitions' positions (as Kafka Streams does).
final class RecordingListener: RebalanceListener {
    var revoked: [[TopicPartition]] = []
    var assigned: [[TopicPartition]] = []
    var threads: Set<String> = []
    weak var consumer: (any LogConsumer)?
    var commitOnRevoke = false
    var commitErrors: [EddyError] = []

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        revoked.append(partitions)
        threads.insert(ConsumerGroupTests.threadName())
        if commitOnRevoke, let consumer, !partitions.isEmpty {
            do {
                var offsets: [TopicPartition: Offset] = [:]
                for tp in partitions { offsets[tp] = try consumer.position(tp) }
                try consumer.commit(offsets)
            } catch let error as EddyError {
                commitErrors.append(error)
            } catch {}
        }
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) {
        assigned.append(partitions)
        threads.insert(ConsumerGroupTests.threadName())
    }
}

@Suite struct ConsumerGroupTests {
    static func threadName() -> String { "\(pthread_self())" }

    private func member(_ fixture: BackendFixture, _ group: String, session: Int = 30_000,
                        isolation: IsolationLevel = .readCommitted) throws -> any LogConsumer {
        try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group, isolation: isolation,
                                                               sessionTimeoutMilliseconds: session))
    }

    /// Polls every consumer (timeout 0) a few rounds so that rebalances settle.
    private func settle(_ consumers: [any LogConsumer], rounds: Int = 4) throws {
        for _ in 0..<rounds { for consumer in consumers { _ = try consumer.poll(timeoutMilliseconds: 0) } }
    }

    @Test(arguments: BackendKind.allCases)
    func membersOfOneGroupSharePartitionsByRange(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 7)
        let group = fixture.topicName("group")
        let consumers = try (0..<3).map { _ in try member(fixture, group) }
        for consumer in consumers { try consumer.subscribe([topic], listener: nil) }
        try settle(consumers)
        let assignments = consumers.map { $0.assignment() }
        let all = assignments.flatMap { $0 }
        #expect(all.count == 7)
        #expect(Set(all) == Set((0..<7).map { TopicPartition(topic, $0) }))
        // Range: consecutive partitions, sizes 3, 2, 2.
        #expect(assignments.map(\.count).sorted() == [2, 2, 3])
        for assignment in assignments {
            let numbers = assignment.map(\.partition)
            #expect(numbers == Array(numbers.first!...numbers.last!))
        }
        let description = try fixture.admin.describeGroup(group)
        #expect(description.members.count == 3)
        #expect(Set(description.members.values.flatMap { $0 }) == Set(all))
    }

    @Test(arguments: BackendKind.allCases)
    func partitionIOfCoPartitionedTopicsGoesToTheSameMember(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let left = try fixture.createTopic(partitions: 5)
        let right = try fixture.createTopic(partitions: 5)
        let group = fixture.topicName("group")
        let consumers = try (0..<2).map { _ in try member(fixture, group) }
        for consumer in consumers { try consumer.subscribe([left, right], listener: nil) }
        try settle(consumers)
        for consumer in consumers {
            let assignment = consumer.assignment()
            #expect(!assignment.isEmpty)
            let leftPartitions = Set(assignment.filter { $0.topic == left }.map(\.partition))
            let rightPartitions = Set(assignment.filter { $0.topic == right }.map(\.partition))
            #expect(leftPartitions == rightPartitions)
        }
    }

    @Test(arguments: BackendKind.allCases)
    func aJoiningMemberTriggersARebalanceWithCallbacksInsidePoll(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 4)
        let group = fixture.topicName("group")
        let first = try member(fixture, group)
        let firstListener = RecordingListener()
        try first.subscribe([topic], listener: firstListener)
        #expect(firstListener.assigned.isEmpty)  // nothing happens before poll
        _ = try first.poll(timeoutMilliseconds: 0)
        #expect(firstListener.assigned == [(0..<4).map { TopicPartition(topic, $0) }])
        #expect(firstListener.threads == [ConsumerGroupTests.threadName()])

        let second = try member(fixture, group)
        let secondListener = RecordingListener()
        try second.subscribe([topic], listener: secondListener)
        _ = try second.poll(timeoutMilliseconds: 0)
        // The first member still holds everything: the newcomer waits for the revocation.
        #expect(second.assignment().isEmpty)
        _ = try first.poll(timeoutMilliseconds: 0)
        #expect(firstListener.revoked == [[TopicPartition(topic, 2), TopicPartition(topic, 3)]])
        #expect(first.assignment() == [TopicPartition(topic, 0), TopicPartition(topic, 1)])
        _ = try second.poll(timeoutMilliseconds: 0)
        #expect(secondListener.assigned.last == [TopicPartition(topic, 2), TopicPartition(topic, 3)])
        #expect(first.groupMetadata()!.generation == second.groupMetadata()!.generation)
    }

    @Test(arguments: BackendKind.allCases)
    func aLeavingMemberHandsItsPartitionsToTheOthers(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 4)
        let group = fixture.topicName("group")
        let first = try member(fixture, group)
        let second = try member(fixture, group)
        let firstListener = RecordingListener()
        let secondListener = RecordingListener()
        try first.subscribe([topic], listener: firstListener)
        try second.subscribe([topic], listener: secondListener)
        try settle([first, second])
        #expect(first.assignment().count == 2)
        let secondsPartitions = second.assignment()
        try second.close()
        #expect(secondListener.revoked.last == secondsPartitions)
        _ = try first.poll(timeoutMilliseconds: 0)
        #expect(first.assignment().count == 4)
        #expect(firstListener.assigned.last == secondsPartitions)
        #expect(try fixture.admin.describeGroup(group).members.count == 1)
        try first.unsubscribe()
        #expect(try fixture.admin.describeGroup(group).isEmpty)
    }

    @Test(arguments: BackendKind.allCases)
    func aMemberThatMissesItsSessionTimeoutIsFencedAndReplaced(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let group = fixture.topicName("group")
        let slow = try member(fixture, group, session: 1_000)
        let live = try member(fixture, group, session: 1_000)
        try slow.subscribe([topic], listener: nil)
        try live.subscribe([topic], listener: nil)
        try settle([slow, live])
        #expect(slow.assignment().count == 1)
        // `live` keeps polling; `slow` stops.
        let deadline = ClientLock.monotonicMilliseconds() + 10_000
        while live.assignment().count < 2 && ClientLock.monotonicMilliseconds() < deadline {
            _ = try live.poll(timeoutMilliseconds: 50)
        }
        #expect(live.assignment().count == 2)
        expectEddyError(.consumerFenced) { try slow.commit([TopicPartition(topic, 0): 1]) }
        // Its next poll rejoins the group.
        let slowListener = RecordingListener()
        try slow.unsubscribe()
        try slow.subscribe([topic], listener: slowListener)
        try settle([slow, live])
        #expect(slow.assignment().count == 1)
        #expect(live.assignment().count == 1)
    }

    @Test(arguments: BackendKind.allCases)
    func commitsWithAStaleGenerationAreFencedButRevokeCallbacksMayCommit(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let group = fixture.topicName("group")
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        for i in 0..<20 { try producer.send(ProducerRecord(topic: topic, partition: i % 2, value: payload("\(i)"))) }
        try producer.flush()

        let first = try member(fixture, group)
        let listener = RecordingListener()
        listener.consumer = first
        listener.commitOnRevoke = true
        try first.subscribe([topic], listener: listener)
        let read = try pollRecords(first, count: 20)
        #expect(read.count == 20)
        try first.commitPositions()

        let second = try member(fixture, group)
        try second.subscribe([topic], listener: nil)
        _ = try second.poll(timeoutMilliseconds: 0)
        _ = try first.poll(timeoutMilliseconds: 0)  // revokes partition 1, committing in the callback
        #expect(listener.commitErrors.isEmpty)
        #expect(listener.revoked == [[TopicPartition(topic, 1)]])
        #expect(try fixture.admin.committedOffsets(group: group)[TopicPartition(topic, 1)] == 10)
        // The second member starts at the committed offset: nothing is read twice.
        let more = try second.poll(timeoutMilliseconds: 100)
        #expect(more.isEmpty)
        #expect(try second.position(TopicPartition(topic, 1)) == 10)

        // A consumer outside the group cannot commit while the group has members.
        let outsider = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        expectEddyError(.invalidState) { try outsider.commit([TopicPartition(topic, 0): 0]) }
        let third = try member(fixture, group)
        try third.subscribe([topic], listener: nil)
        // `first` has not polled since the third member joined, but it still owns partition 0
        // at its generation, so its commit stands; after the rebalance it is in the new generation.
        try first.commit([TopicPartition(topic, 0): 10])
        try settle([first, second, third])
        try first.commit([TopicPartition(topic, 0): 10])
    }

    @Test(arguments: BackendKind.allCases)
    func aRestartedMemberResumesFromTheCommittedOffsets(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 3)
        let group = fixture.topicName("group")
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        for i in 0..<30 { try producer.send(ProducerRecord(topic: topic, partition: i % 3, value: payload("\(i)"))) }
        try producer.flush()
        let first = try member(fixture, group)
        try first.subscribe([topic], listener: nil)
        let read = try pollRecords(first, count: 30)
        #expect(read.count == 30)
        // Commit only up to offset 5 on every partition.
        try first.commit(Dictionary(uniqueKeysWithValues: (0..<3).map { (TopicPartition(topic, $0), Offset(5)) }))
        try first.close()
        let again = try member(fixture, group)
        try again.subscribe([topic], listener: nil)
        let rest = try pollRecords(again, count: 15)
        #expect(rest.count == 15)
        #expect(rest.allSatisfy { $0.offset >= 5 })
    }

    @Test(arguments: BackendKind.allCases)
    func aTopicCreatedAfterSubscribingIsAssignedToItsSubscribers(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let group = fixture.topicName("group")
        let topic = fixture.topicName()
        let consumer = try member(fixture, group)
        try consumer.subscribe([topic], listener: nil)
        _ = try consumer.poll(timeoutMilliseconds: 0)
        #expect(consumer.assignment().isEmpty)
        try fixture.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 2))
        _ = try consumer.poll(timeoutMilliseconds: 0)
        #expect(consumer.assignment() == [TopicPartition(topic, 0), TopicPartition(topic, 1)])
    }

    @Test(arguments: BackendKind.allCases)
    func theGroupsOffsetsCannotBeAlteredWhileItHasMembers(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let group = fixture.topicName("group")
        let consumer = try member(fixture, group)
        try consumer.subscribe([topic], listener: nil)
        expectEddyError(.invalidState) { try fixture.admin.alterCommittedOffsets(group: group, offsets: [TopicPartition(topic, 0): 1]) }
        expectEddyError(.invalidState) { try fixture.admin.deleteCommittedOffsets(group: group, topics: nil) }
        try consumer.close()
        try fixture.admin.alterCommittedOffsets(group: group, offsets: [TopicPartition(topic, 0): 0])
    }

    /// Seeded: members join, poll, commit and leave at random while records keep arriving.
    /// A partition never has two owners, and with commits in the revoke callback every record
    /// is consumed exactly once.
    @Test(arguments: BackendKind.allCases)
    func randomMembershipChurnConsumesEveryRecordExactlyOnce(kind: BackendKind) throws {
        let seed = clientTestSeed("randomMembershipChurnConsumesEveryRecordExactlyOnce")
        var random = ClientTestRandom(seed: seed)
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 6)
        let group = fixture.topicName("group")
        let producer = try fixture.backend.makeProducer(ProducerConfiguration(lingerMilliseconds: 0))
        var members: [(any LogConsumer, RecordingListener)] = []
        var produced = 0
        var consumed: [String] = []
        func addMember() throws {
            let consumer = try member(fixture, group)
            let listener = RecordingListener()
            listener.consumer = consumer
            listener.commitOnRevoke = true
            try consumer.subscribe([topic], listener: listener)
            members.append((consumer, listener))
        }
        try addMember()
        for step in 0..<300 {
            switch random.next() % 10 {
            case 0, 1, 2:
                for _ in 0..<Int(random.next() % 20) {
                    try producer.send(ProducerRecord(topic: topic, key: payload("k\(random.next() % 50)"), value: payload("r\(produced)")))
                    produced += 1
                }
            case 3:
                if members.count < 4 { try addMember() }
            case 4:
                if members.count > 1 {
                    let (consumer, listener) = members.remove(at: Int(random.next() % UInt64(members.count)))
                    try consumer.close()
                    #expect(listener.commitErrors.isEmpty, "seed \(seed) step \(step)")
                }
            default:
                let (consumer, _) = members[Int(random.next() % UInt64(members.count))]
                let records = try consumer.poll(timeoutMilliseconds: 0)
                consumed += records.map { String(decoding: $0.value!, as: UTF8.self) }
                if !records.isEmpty { try consumer.commitPositions() }
            }
            let owners = try fixture.admin.describeGroup(group).members.values.flatMap { $0 }
            #expect(owners.count == Set(owners).count, "seed \(seed) step \(step): a partition has two owners")
        }
        // Drain with the remaining members.
        let deadline = ClientLock.monotonicMilliseconds() + 10_000
        while consumed.count < produced && ClientLock.monotonicMilliseconds() < deadline {
            for (consumer, _) in members {
                let records = try consumer.poll(timeoutMilliseconds: 10)
                consumed += records.map { String(decoding: $0.value!, as: UTF8.self) }
                if !records.isEmpty { try consumer.commitPositions() }
            }
        }
        #expect(consumed.count == produced, "seed \(seed): \(consumed.count) consumed of \(produced)")
        #expect(Set(consumed).count == consumed.count, "seed \(seed): duplicates")
        for listener in members.map(\.1) { #expect(listener.commitErrors.isEmpty, "seed \(seed)") }
    }

    @Test func theRangeAssignorMatchesKafkasLayout() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        try log.admin.createTopic("a", configuration: TopicConfiguration(partitions: 5))
        try log.admin.createTopic("b", configuration: TopicConfiguration(partitions: 2))
        let assignment = log.groups.rangeAssignment(["m1": ["a", "b"], "m2": ["a"], "m3": ["a", "b"]])
        // a: 5 partitions over m1, m2, m3 -> 2, 2, 1; b: 2 partitions over m1, m3 -> 1, 1.
        #expect(assignment["m1"] == [TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)])
        #expect(assignment["m2"] == [TopicPartition("a", 2), TopicPartition("a", 3)])
        #expect(assignment["m3"] == [TopicPartition("a", 4), TopicPartition("b", 1)])
    }
}
