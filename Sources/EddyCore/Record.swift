/// An offset in a partition: the position of a record, starting at 0, dense and never reused.
public typealias Offset = Int64

/// Milliseconds since the Unix epoch, as Kafka stores record timestamps.
public typealias Timestamp = Int64

/// One header of a record: a string key and optional bytes (Kafka allows a null value).
public struct Header: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]?
    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }
    /// A header whose value is the UTF-8 bytes of `value`.
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = Array(value.utf8)
    }
}

/// A topic and a partition number.
public struct TopicPartition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int
    public init(_ topic: String, _ partition: Int) {
        self.topic = topic
        self.partition = partition
    }
    /// `topic-partition`, as Kafka names partition directories.
    public var description: String { "\(topic)-\(partition)" }
    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }
}

/// A record as an application writes it: key, value, headers and timestamp.
/// A `nil` value is a tombstone (a delete, for compacted topics and tables).
public struct Record: Hashable, Sendable {
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]
    public var timestamp: Timestamp
    public init(key: [UInt8]? = nil, value: [UInt8]?, headers: [Header] = [], timestamp: Timestamp) {
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// A record to send: where to (topic, optional partition) and what.
///
/// With no partition, keyed records go to ``DefaultPartitioner`` (murmur2, like Kafka) and
/// unkeyed records are spread by the producer. With no timestamp, the producer stamps the
/// wall-clock time.
public struct ProducerRecord: Hashable, Sendable {
    public var topic: String
    public var partition: Int?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]
    public var timestamp: Timestamp?
    public init(topic: String, partition: Int? = nil, key: [UInt8]? = nil, value: [UInt8]?,
                headers: [Header] = [], timestamp: Timestamp? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// Where an appended record landed.
public struct RecordMetadata: Hashable, Sendable {
    public var topicPartition: TopicPartition
    public var offset: Offset
    public var timestamp: Timestamp
    public init(topicPartition: TopicPartition, offset: Offset, timestamp: Timestamp) {
        self.topicPartition = topicPartition
        self.offset = offset
        self.timestamp = timestamp
    }
}

/// Whether a record's timestamp was set by its producer or by the log when appended.
public enum TimestampType: Int8, Hashable, Sendable {
    case createTime = 0
    case logAppendTime = 1
}

/// A record as a consumer reads it back: with its topic, partition and offset.
public struct ConsumerRecord: Hashable, Sendable {
    public var topic: String
    public var partition: Int
    public var offset: Offset
    public var timestamp: Timestamp
    public var timestampType: TimestampType
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]
    public init(topic: String, partition: Int, offset: Offset, timestamp: Timestamp,
                timestampType: TimestampType = .createTime, key: [UInt8]?, value: [UInt8]?,
                headers: [Header] = []) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestampType = timestampType
        self.key = key
        self.value = value
        self.headers = headers
    }
    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
}
