import CRdKafka
import EddyCore
import Foundation

/// ``LogAdmin`` over librdkafka's Admin API (`rd_kafka_CreateTopics`, `rd_kafka_DeleteTopics`,
/// `rd_kafka_ListConsumerGroupOffsets`, `rd_kafka_AlterConsumerGroupOffsets`,
/// `rd_kafka_DeleteConsumerGroupOffsets`, `rd_kafka_DescribeConsumerGroups`) and metadata /
/// offset look-ups. Thread-safe: every call uses its own result queue on thread-safe handles.
final class KafkaAdmin: LogAdmin, @unchecked Sendable {
    // @unchecked Sendable: immutable after init; librdkafka handles are thread-safe.
    /// A consumer-type handle (no group) with `allow.auto.create.topics=false`, so metadata
    /// requests never create topics; read_uncommitted watermarks (the high watermark).
    let metadataClient: RDKafkaClient
    /// The same with `isolation.level=read_committed`: its high watermark is the LSO.
    let committedClient: RDKafkaClient
    private let mockCluster: KafkaMockCluster?
    private let timeoutMilliseconds: Int
    private let clusterLock = NSLock()
    private var knownMock: Bool?

    init(configuration: KafkaConfiguration, mockCluster: KafkaMockCluster?) throws {
        var properties = configuration.properties
        properties["allow.auto.create.topics"] = "false"
        properties["client.id"] = properties["client.id"] ?? "eddy-admin"
        properties["isolation.level"] = "read_uncommitted"
        metadataClient = try RDKafkaClient(kind: .consumer, properties: properties,
                                           context: RDKafkaClientContext(logLevel: configuration.logLevel))
        properties["isolation.level"] = "read_committed"
        committedClient = try RDKafkaClient(kind: .consumer, properties: properties,
                                            context: RDKafkaClientContext(logLevel: configuration.logLevel))
        self.mockCluster = mockCluster
        timeoutMilliseconds = configuration.requestTimeoutMilliseconds
    }

    private var handle: OpaquePointer { metadataClient.handle }

    /// Librdkafka topic configs for a ``TopicConfiguration`` (Kafka's names; -1 for "no limit").
    static func topicConfigs(_ configuration: TopicConfiguration) -> [String: String] {
        var c: [String: String] = [
            "cleanup.policy": configuration.cleanupPolicy.rawValue,
            "retention.ms": String(configuration.retentionMilliseconds ?? -1),
            "retention.bytes": String(configuration.retentionBytes ?? -1),
            "delete.retention.ms": String(configuration.deleteRetentionMilliseconds),
            "max.message.bytes": String(configuration.maximumRecordBytes),
            "segment.bytes": String(configuration.segmentBytes),
            "segment.ms": String(configuration.segmentMilliseconds),
        ]
        if configuration.compression != .none { c["compression.type"] = configuration.compression.rawValue }
        for (key, value) in configuration.extra { c[key] = value }
        return c
    }

    func createTopic(_ name: String, configuration: TopicConfiguration) throws {
        try Names.validateTopic(name)
        try configuration.validate()
        if try topicExists(name) { throw EddyError(.topicExists, "topic \(name) exists") }
        if let mockCluster {
            // The mock's CreateTopics times out; its own call creates the topic. The mock keeps no
            // configs (and has no DescribeConfigs): the cluster object records the request.
            try mockCluster.createTopic(name, configuration: configuration)
            return
        }
        if try isMockCluster() {
            throw EddyError(.unsupported, "librdkafka's mock cluster does not answer CreateTopics; create topic \(name) when starting the mock (eddy kafka-mock --topic \(name):\(configuration.partitions))")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(name, Int32(configuration.partitions), -1, &errorText, errorText.count) else {
            throw EddyError(.invalidArgument, "topic \(name): \(cText(errorText))")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        for (key, value) in Self.topicConfigs(configuration) {
            let err = rd_kafka_NewTopic_set_config(newTopic, key, value)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw RDKafkaError.error(err, "topic \(name) config \(key)") }
        }
        try adminCall("create topic \(name)") { queue, options in
            var topics: [OpaquePointer?] = [newTopic]
            rd_kafka_CreateTopics(handle, &topics, 1, options, queue)
        } result: { event in
            var count = 0
            let results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count)
            try Self.checkTopicResults(results, count, "create topic \(name)")
        }
    }

    func deleteTopic(_ name: String) throws {
        try Names.validateTopic(name)
        guard try topicExists(name) else { throw EddyError(.unknownTopic, "unknown topic \(name)") }
        try refuseOnMock("DeleteTopics")
        guard let deleteTopic = rd_kafka_DeleteTopic_new(name) else { throw EddyError(.invalidName, "topic \(name)") }
        defer { rd_kafka_DeleteTopic_destroy(deleteTopic) }
        try adminCall("delete topic \(name)") { queue, options in
            var topics: [OpaquePointer?] = [deleteTopic]
            rd_kafka_DeleteTopics(handle, &topics, 1, options, queue)
        } result: { event in
            var count = 0
            let results = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event), &count)
            try Self.checkTopicResults(results, count, "delete topic \(name)")
        }
    }

    /// Partition offsets from watermarks (the LSO from a read_committed look-up). Kafka reports
    /// no partition sizes to clients, so `sizeBytes` is -1. The configuration comes from
    /// `rd_kafka_DescribeConfigs` where the cluster supports it; the mock cluster does not, and
    /// then it is the configuration requested when the topic was created through this log's
    /// mock cluster (``KafkaMockCluster/requestedConfiguration(of:)``), else defaults with the
    /// partition count.
    func describeTopic(_ name: String) throws -> TopicDescription {
        try Names.validateTopic(name)
        let count = try metadataClient.partitionCount(of: name, timeoutMilliseconds: timeoutMilliseconds)
        var partitions: [PartitionDescription] = []
        for p in 0..<count {
            let tp = TopicPartition(name, p)
            let marks = try metadataClient.watermarks(tp, timeoutMilliseconds: timeoutMilliseconds)
            let stable = try committedClient.watermarks(tp, timeoutMilliseconds: timeoutMilliseconds)
            partitions.append(PartitionDescription(partition: p, startOffset: marks.low, endOffset: marks.high,
                                                   lastStableOffset: stable.high, sizeBytes: -1))
        }
        var configuration = TopicConfiguration(partitions: count)
        if let mockCluster {
            // The configuration requested at creation: the mock keeps none of its own.
            if let requested = mockCluster.requestedConfiguration(of: name) {
                configuration = requested
                configuration.partitions = count
            }
        } else if (try? isMockCluster()) == false, let configs = try? describeConfigs(name) {
            // (A mock in another process has no DescribeConfigs either: not asked.)
            Self.apply(configs, to: &configuration)
        }
        return TopicDescription(name: name, configuration: configuration, partitions: partitions)
    }

    static func apply(_ configs: [String: String], to c: inout TopicConfiguration) {
        if let v = configs["cleanup.policy"].flatMap({ CleanupPolicy(rawValue: $0) }) { c.cleanupPolicy = v }
        if let v = configs["retention.ms"].flatMap(Int64.init) { c.retentionMilliseconds = v < 0 ? nil : v }
        if let v = configs["retention.bytes"].flatMap(Int64.init) { c.retentionBytes = v < 0 ? nil : v }
        if let v = configs["delete.retention.ms"].flatMap(Int64.init) { c.deleteRetentionMilliseconds = v }
        if let v = configs["max.message.bytes"].flatMap(Int.init) { c.maximumRecordBytes = v }
        if let v = configs["segment.bytes"].flatMap(Int.init) { c.segmentBytes = v }
        if let v = configs["segment.ms"].flatMap(Int64.init) { c.segmentMilliseconds = v }
    }

    /// `rd_kafka_DescribeConfigs` for one topic.
    private func describeConfigs(_ name: String) throws -> [String: String] {
        guard let resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name) else { return [:] }
        defer { rd_kafka_ConfigResource_destroy(resource) }
        var configs: [String: String] = [:]
        try adminCall("describe configs of \(name)") { queue, options in
            var resources: [OpaquePointer?] = [resource]
            rd_kafka_DescribeConfigs(handle, &resources, 1, options, queue)
        } result: { event in
            var count = 0
            guard let resources = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(event), &count),
                  count > 0, let first = resources[0] else { return }
            var entryCount = 0
            guard let entries = rd_kafka_ConfigResource_configs(first, &entryCount) else { return }
            for i in 0..<entryCount {
                guard let entry = entries[i], let value = rd_kafka_ConfigEntry_value(entry) else { continue }
                configs[String(cString: rd_kafka_ConfigEntry_name(entry))] = String(cString: value)
            }
        }
        return configs
    }

    func listTopics() throws -> [String] {
        try metadataClient.allTopics(timeoutMilliseconds: timeoutMilliseconds).keys.sorted()
    }

    /// `rd_kafka_ListConsumerGroupOffsets` for all partitions (a NULL partition list). Brokers
    /// whose OffsetFetch cannot list "all" (the mock cluster) answer empty; then every partition
    /// of every topic is asked for explicitly.
    func committedOffsets(group: String) throws -> [TopicPartition: Offset] {
        let offsets = try committedOffsets(group: group, partitions: nil)
        if !offsets.isEmpty { return offsets }
        var all: [TopicPartition] = []
        for (topic, count) in try metadataClient.allTopics(timeoutMilliseconds: timeoutMilliseconds) where !topic.hasPrefix("__") {
            for p in 0..<count { all.append(TopicPartition(topic, p)) }
        }
        return all.isEmpty ? [:] : try committedOffsets(group: group, partitions: all.sorted())
    }

    private func committedOffsets(group: String, partitions: [TopicPartition]?) throws -> [TopicPartition: Offset] {
        try Names.validate(group, what: "group")
        let list = partitions.map { RDKafkaTopicPartitionList($0) }
        guard let request = rd_kafka_ListConsumerGroupOffsets_new(group, list?.pointer) else { return [:] }
        defer { rd_kafka_ListConsumerGroupOffsets_destroy(request) }
        var offsets: [TopicPartition: Offset] = [:]
        try adminCall("committed offsets of group \(group)") { queue, options in
            var requests: [OpaquePointer?] = [request]
            rd_kafka_ListConsumerGroupOffsets(handle, &requests, 1, options, queue)
        } result: { event in
            var count = 0
            let groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
                rd_kafka_event_ListConsumerGroupOffsets_result(event), &count)
            for e in try Self.groupPartitions(groups, count, "committed offsets of group \(group)") where e.offset >= 0 {
                offsets[e.topicPartition] = e.offset
            }
        }
        return offsets
    }

    func alterCommittedOffsets(group: String, offsets: [TopicPartition: Offset]) throws {
        try Names.validate(group, what: "group")
        let list = RDKafkaTopicPartitionList(offsets)
        guard let request = rd_kafka_AlterConsumerGroupOffsets_new(group, list.pointer) else { return }
        defer { rd_kafka_AlterConsumerGroupOffsets_destroy(request) }
        try adminCall("alter offsets of group \(group)") { queue, options in
            var requests: [OpaquePointer?] = [request]
            rd_kafka_AlterConsumerGroupOffsets(handle, &requests, 1, options, queue)
        } result: { event in
            var count = 0
            let groups = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(event), &count)
            _ = try Self.groupPartitions(groups, count, "alter offsets of group \(group)")
        }
    }

    /// `rd_kafka_DeleteConsumerGroupOffsets` (Kafka's OffsetDelete; the mock cluster does not
    /// implement it and the call fails there with ``EddyError/Code/unsupported`` or a timeout).
    func deleteCommittedOffsets(group: String, topics: [String]?) throws {
        let current = try committedOffsets(group: group)
        let partitions = current.keys.filter { topics?.contains($0.topic) ?? true }
        guard !partitions.isEmpty else { return }
        try refuseOnMock("OffsetDelete")
        let list = RDKafkaTopicPartitionList(partitions.sorted())
        guard let request = rd_kafka_DeleteConsumerGroupOffsets_new(group, list.pointer) else { return }
        defer { rd_kafka_DeleteConsumerGroupOffsets_destroy(request) }
        try adminCall("delete offsets of group \(group)") { queue, options in
            var requests: [OpaquePointer?] = [request]
            rd_kafka_DeleteConsumerGroupOffsets(handle, &requests, 1, options, queue)
        } result: { event in
            var count = 0
            let groups = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
                rd_kafka_event_DeleteConsumerGroupOffsets_result(event), &count)
            _ = try Self.groupPartitions(groups, count, "delete offsets of group \(group)")
        }
    }

    /// `rd_kafka_DescribeConsumerGroups`: members (consumer id -> assigned partitions). Kafka's
    /// DescribeGroups reports no generation, so `generation` is -1.
    func describeGroup(_ group: String) throws -> GroupDescription {
        try Names.validate(group, what: "group")
        try refuseOnMock("DescribeGroups")
        var members: [String: [TopicPartition]] = [:]
        try group.withCString { groupName in
            try adminCall("describe group \(group)") { queue, options in
                var groups: [UnsafePointer<CChar>?] = [groupName]
                rd_kafka_DescribeConsumerGroups(handle, &groups, 1, options, queue)
            } result: { event in
                var count = 0
                guard let groups = rd_kafka_DescribeConsumerGroups_result_groups(
                    rd_kafka_event_DescribeConsumerGroups_result(event), &count), count > 0, let description = groups[0] else { return }
                if let error = rd_kafka_ConsumerGroupDescription_error(description),
                   rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw RDKafkaError.error(rd_kafka_error_code(error), "describe group \(group)")
                }
                for i in 0..<rd_kafka_ConsumerGroupDescription_member_count(description) {
                    guard let member = rd_kafka_ConsumerGroupDescription_member(description, i) else { continue }
                    let id = String(cString: rd_kafka_MemberDescription_consumer_id(member))
                    var assigned: [TopicPartition] = []
                    if let assignment = rd_kafka_MemberDescription_assignment(member),
                       let list = rd_kafka_MemberAssignment_partitions(assignment) {
                        assigned = RDKafkaTopicPartitionList(borrowing: UnsafeMutablePointer(mutating: list)).partitions
                    }
                    members[id] = assigned.sorted()
                }
            }
        }
        return GroupDescription(group: group, members: members, generation: -1)
    }

    func offsets(forTimestamp timestamp: Timestamp, partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        var times: [TopicPartition: Timestamp] = [:]
        for partition in partitions { times[partition] = timestamp }
        let found = try metadataClient.offsets(forTimes: times, timeoutMilliseconds: timeoutMilliseconds)
        var result: [TopicPartition: Offset] = [:]
        for partition in partitions {
            if let offset = found[partition] ?? nil {
                result[partition] = offset
            } else {
                result[partition] = try metadataClient.watermarks(partition, timeoutMilliseconds: timeoutMilliseconds).high
            }
        }
        return result
    }

    // MARK: - Helpers

    /// The mock cluster does not implement some Admin APIs; librdkafka 2.0.2 then waits for the
    /// request timeout and can trip an internal assertion (`rd_kafka_enq_once_del_source_return`)
    /// when the timed-out request is cleaned up. Refuse them at once instead.
    private func refuseOnMock(_ api: String) throws {
        if try isMockCluster() {
            throw EddyError(.unsupported, "librdkafka's mock cluster does not implement \(api)")
        }
    }

    /// Whether the cluster is librdkafka's mock: this log's own ``KafkaMockCluster``, or one in
    /// another process (`eddy kafka-mock`), recognised by the cluster id the mock reports
    /// (`mockCluster…`, `rd_kafka_clusterid`). Asked once, then remembered.
    func isMockCluster() throws -> Bool {
        if mockCluster != nil { return true }
        return try clusterLock.withLock {
            if let knownMock { return knownMock }
            guard let id = rd_kafka_clusterid(handle, Int32(timeoutMilliseconds)) else {
                throw EddyError(.timeout, "the cluster reported no cluster id within \(timeoutMilliseconds) ms")
            }
            defer { rd_kafka_mem_free(handle, id) }
            let mock = String(cString: id).hasPrefix("mockCluster")
            knownMock = mock
            return mock
        }
    }

    private func topicExists(_ name: String) throws -> Bool {
        do {
            _ = try metadataClient.partitionCount(of: name, timeoutMilliseconds: timeoutMilliseconds)
            return true
        } catch let error as EddyError where error.code == .unknownTopic {
            return false
        }
    }

    /// Runs one Admin API request: a result queue (`rd_kafka_queue_new`), options with the
    /// request timeout (`rd_kafka_AdminOptions_new`), waits for the result event
    /// (`rd_kafka_queue_poll`), checks `rd_kafka_event_error`, then hands the event to `result`.
    private func adminCall(_ what: String, start: (OpaquePointer, OpaquePointer) -> Void,
                           result: (OpaquePointer) throws -> Void) throws {
        guard let queue = rd_kafka_queue_new(handle) else { throw EddyError(.io, "\(what): rd_kafka_queue_new failed") }
        defer { rd_kafka_queue_destroy(queue) }
        guard let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_ANY) else {
            throw EddyError(.io, "\(what): rd_kafka_AdminOptions_new failed")
        }
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorText = [CChar](repeating: 0, count: 256)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, Int32(timeoutMilliseconds), &errorText, errorText.count)
        start(queue, options)
        guard let event = rd_kafka_queue_poll(queue, Int32(timeoutMilliseconds + 2_000)) else {
            throw EddyError(.timeout, "\(what): no answer within \(timeoutMilliseconds) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let detail = rd_kafka_event_error_string(event).map { String(cString: $0) }
            throw RDKafkaError.error(err, what, detail: detail, redactor: metadataClient.redactor)
        }
        try result(event)
    }

    private static func checkTopicResults(_ results: UnsafeMutablePointer<OpaquePointer?>?, _ count: Int,
                                          _ what: String) throws {
        guard let results else { return }
        for i in 0..<count {
            guard let r = results[i] else { continue }
            let err = rd_kafka_topic_result_error(r)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw RDKafkaError.error(err, what, detail: rd_kafka_topic_result_error_string(r).map { String(cString: $0) })
            }
        }
    }

    private static func groupPartitions(_ groups: UnsafeMutablePointer<OpaquePointer?>?, _ count: Int,
                                        _ what: String) throws -> [RDKafkaTopicPartitionList.Element] {
        guard let groups else { return [] }
        var elements: [RDKafkaTopicPartitionList.Element] = []
        for i in 0..<count {
            guard let g = groups[i] else { continue }
            if let error = rd_kafka_group_result_error(g), rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw RDKafkaError.error(rd_kafka_error_code(error), what,
                                         detail: rd_kafka_error_string(error).map { String(cString: $0) })
            }
            if let list = rd_kafka_group_result_partitions(g) {
                let wrapped = RDKafkaTopicPartitionList(borrowing: UnsafeMutablePointer(mutating: list))
                try wrapped.checkErrors(what)
                elements += wrapped.elements
            }
        }
        return elements
    }
}
