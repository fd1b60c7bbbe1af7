import EddyCore

/// Topic and group administration of an ``EmbeddedLog``. Thread-safe; cheap to make (it is a
/// view of the log). Every call throws ``EddyError/Code/closed`` once the log is closed.
struct EmbeddedAdmin: LogAdmin {
    let log: EmbeddedLog

    /// Validates the name (Kafka's rules, before any path is built) and the configuration,
    /// writes the topic catalogue durably, then creates the partitions. Groups subscribed to
    /// the topic rebalance to include it.
    func createTopic(_ name: String, configuration: TopicConfiguration) throws {
        try log.createTopic(name, configuration: configuration)
    }

    /// Removes the topic from the catalogue, then closes and deletes its partitions. The
    /// internal topics (`__consumer_offsets`, `__transaction_state`) cannot be deleted.
    func deleteTopic(_ name: String) throws {
        try log.deleteTopic(name)
    }

    func describeTopic(_ name: String) throws -> TopicDescription {
        try Names.validateTopic(name)
        let handle = try log.topic(name)
        let partitions = handle.partitions.enumerated().map { index, partition in
            PartitionDescription(partition: index, startOffset: partition.startOffset, endOffset: partition.endOffset,
                                 lastStableOffset: partition.lastStableOffset, sizeBytes: partition.sizeBytes)
        }
        return TopicDescription(name: name, configuration: handle.configuration, partitions: partitions)
    }

    func listTopics() throws -> [String] {
        try log.topicNames()
    }

    func committedOffsets(group: String) throws -> [TopicPartition: Offset] {
        try log.checkOpen()
        try Names.validate(group, what: "group id")
        return log.groups.committed(group: group)
    }

    func alterCommittedOffsets(group: String, offsets: [TopicPartition: Offset]) throws {
        try log.checkOpen()
        try Names.validate(group, what: "group id")
        for tp in offsets.keys { _ = try log.partition(tp) }
        try log.groups.alterCommitted(group: group, offsets: offsets)
    }

    func deleteCommittedOffsets(group: String, topics: [String]?) throws {
        try log.checkOpen()
        try Names.validate(group, what: "group id")
        try log.groups.deleteCommitted(group: group, topics: topics)
    }

    func describeGroup(_ group: String) throws -> GroupDescription {
        try log.checkOpen()
        try Names.validate(group, what: "group id")
        return log.groups.describe(group: group)
    }

    func offsets(forTimestamp timestamp: Timestamp, partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        try log.checkOpen()
        var result: [TopicPartition: Offset] = [:]
        for tp in partitions {
            let partition = try log.partition(tp)
            result[tp] = try partition.offset(forTimestamp: timestamp) ?? partition.endOffset
        }
        return result
    }
}
