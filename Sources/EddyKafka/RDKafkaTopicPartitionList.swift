import CRdKafka
import EddyCore
import Foundation

/// An owned `rd_kafka_topic_partition_list_t` (`rd_kafka_topic_partition_list_new`, `_add`,
/// destroyed with `rd_kafka_topic_partition_list_destroy`). Confined to the thread that made it.
final class RDKafkaTopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    private let owned: Bool

    init(capacity: Int = 8) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
        owned = true
    }

    /// Borrows a list librdkafka owns (e.g. the one handed to the rebalance callback).
    init(borrowing pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
        owned = false
    }

    /// Takes ownership of a list librdkafka returned to us.
    init(adopting pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
        owned = true
    }

    convenience init(_ partitions: [TopicPartition], offset: Int64 = Int64(RD_KAFKA_OFFSET_INVALID)) {
        self.init(capacity: partitions.count)
        for partition in partitions { add(partition, offset: offset) }
    }

    convenience init(_ offsets: [TopicPartition: Int64]) {
        self.init(capacity: offsets.count)
        for (partition, offset) in offsets.sorted(by: { $0.key < $1.key }) { add(partition, offset: offset) }
    }

    /// Offsets with their metadata (empty metadata: none).
    convenience init(_ offsets: [TopicPartition: OffsetAndMetadata]) {
        self.init(capacity: offsets.count)
        for (partition, entry) in offsets.sorted(by: { $0.key < $1.key }) {
            add(partition, offset: entry.offset, metadata: entry.metadata)
        }
    }

    deinit { if owned { rd_kafka_topic_partition_list_destroy(pointer) } }

    /// `rd_kafka_topic_partition_list_add`, then sets the offset.
    func add(_ partition: TopicPartition, offset: Int64 = Int64(RD_KAFKA_OFFSET_INVALID)) {
        let element = rd_kafka_topic_partition_list_add(pointer, partition.topic, Int32(partition.partition))!
        element.pointee.offset = offset
    }

    /// `rd_kafka_topic_partition_list_add`, then sets the offset and the element's
    /// `metadata`/`metadata_size` (a `malloc`ed copy of the UTF-8 bytes, which
    /// `rd_kafka_topic_partition_list_destroy` frees; none when `metadata` is empty).
    func add(_ partition: TopicPartition, offset: Int64, metadata: String) {
        let element = rd_kafka_topic_partition_list_add(pointer, partition.topic, Int32(partition.partition))!
        element.pointee.offset = offset
        let bytes = Array(metadata.utf8)
        guard !bytes.isEmpty, let copy = malloc(bytes.count) else { return }
        bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        element.pointee.metadata = copy
        element.pointee.metadata_size = bytes.count
    }

    struct Element {
        var topicPartition: TopicPartition
        var offset: Int64
        var error: rd_kafka_resp_err_t
        /// The element's `metadata` as text (committed offsets' metadata); empty when none.
        var metadata: String
    }

    var elements: [Element] {
        let list = pointer.pointee
        return (0..<Int(list.cnt)).map { i in
            let e = list.elems[i]
            var metadata = ""
            if let bytes = e.metadata, e.metadata_size > 0 {
                metadata = String(decoding: UnsafeRawBufferPointer(start: bytes, count: e.metadata_size), as: UTF8.self)
            }
            return Element(topicPartition: TopicPartition(String(cString: e.topic), Int(e.partition)),
                           offset: e.offset, error: e.err, metadata: metadata)
        }
    }

    var partitions: [TopicPartition] { elements.map(\.topicPartition) }

    /// Throws the first per-partition error.
    func checkErrors(_ context: String) throws {
        for element in elements where element.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw RDKafkaError.error(element.error, "\(context) \(element.topicPartition)")
        }
    }
}
