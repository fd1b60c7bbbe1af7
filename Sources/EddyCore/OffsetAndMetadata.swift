/// An offset to commit for a consumer group (the next offset to read) together with a short
/// string the group stores beside it (Kafka's `OffsetAndMetadata`).
///
/// The metadata is opaque to the log: it is stored and returned with the offset, durably and
/// atomically with it (inside a transaction too, via `sendOffsetsToTransaction(_:group:)`),
/// and a later commit of the same partition replaces both. A commit without metadata (the
/// plain `commit(_:)` of offsets, or an empty string) clears it, as in Kafka. The streams runtime keeps each input partition's *partition time* here.
///
/// ```swift
/// try consumer.commit([TopicPartition("orders", 0): OffsetAndMetadata(42, metadata: "checkpoint-7")])
/// let committed = try consumer.committedWithMetadata([TopicPartition("orders", 0)])
/// // committed[TopicPartition("orders", 0)] == OffsetAndMetadata(42, metadata: "checkpoint-7")
/// ```
public struct OffsetAndMetadata: Hashable, Sendable {
    /// Largest metadata, in UTF-8 bytes, a commit may carry: 4096, the default of Kafka's
    /// broker setting `offset.metadata.max.bytes`. Longer metadata is refused with
    /// ``EddyError/Code/invalidArgument`` before anything is committed.
    public static let maximumMetadataBytes = 4096

    /// The next offset to read.
    public var offset: Offset
    /// Free-form metadata stored with the offset; empty when there is none.
    public var metadata: String

    /// An offset with `metadata` (empty: none). The size limit is checked when committing.
    public init(_ offset: Offset, metadata: String = "") {
        self.offset = offset
        self.metadata = metadata
    }

    /// Throws ``EddyError/Code/invalidArgument`` if any metadata is longer than
    /// ``maximumMetadataBytes`` UTF-8 bytes. Every backend calls it before committing, so a
    /// commit with one oversized entry commits nothing.
    public static func validate(_ offsets: [TopicPartition: OffsetAndMetadata]) throws {
        for (partition, entry) in offsets where entry.metadata.utf8.count > maximumMetadataBytes {
            throw EddyError(.invalidArgument,
                            "offset metadata for \(partition) is \(entry.metadata.utf8.count) bytes; the limit is \(maximumMetadataBytes) (Kafka's offset.metadata.max.bytes)")
        }
    }
}
