import EddyCore
import Foundation

/// The embedded log's catalogue: which topics exist with which configuration, and the next
/// block of producer ids. Stored as `DATA/topics.json`, rewritten whole through
/// ``FileSystem/writeAtomically(_:to:)`` (temp -> fsync -> rename -> fsync dir) on every change,
/// so a crash leaves either the old or the new catalogue.
///
/// Not thread-safe: ``EmbeddedLog`` calls it under its lock. Topic names are validated by the
/// caller before they reach here (they become directory names).
struct TopicRegistry {
    /// File name inside the data directory.
    static let fileName = "topics.json"
    /// Producer ids are handed out in blocks, so the catalogue is rewritten once per block
    /// rather than once per producer.
    static let producerIDBlockSize: Int64 = 1_000
    /// Largest catalogue file read back (a corrupt or foreign file is refused, not parsed).
    static let maximumFileBytes = 64 * 1_048_576

    private let fileSystem: any FileSystem
    private let path: String
    private(set) var topics: [String: TopicConfiguration] = [:]
    /// First producer id not yet handed out by any run (persisted).
    private var producerIDCeiling: Int64 = 0
    private var nextProducerID: Int64 = 0

    /// Loads `directory/topics.json`, or starts empty when it does not exist.
    init(directory: String, fileSystem: any FileSystem) throws {
        self.fileSystem = fileSystem
        path = directory + "/" + TopicRegistry.fileName
        guard fileSystem.exists(path) else { return }
        let file = try fileSystem.open(path, create: false)
        defer { try? file.close() }
        let size = try file.size()
        guard size <= TopicRegistry.maximumFileBytes else {
            throw EddyError(.corrupt, "\(path) is \(size) bytes; the limit is \(TopicRegistry.maximumFileBytes)")
        }
        let bytes = try file.readAll()
        let stored: StoredCatalogue
        do {
            stored = try JSONDecoder().decode(StoredCatalogue.self, from: Data(bytes))
        } catch {
            throw EddyError(.corrupt, "\(path) does not parse as a topic catalogue: \(error)")
        }
        guard stored.version == 1 else {
            throw EddyError(.corrupt, "\(path) has version \(stored.version); this build reads version 1")
        }
        for (name, topic) in stored.topics {
            try Names.validateTopic(name)
            let configuration = try topic.configuration(path: path, topic: name)
            topics[name] = configuration
        }
        producerIDCeiling = stored.producerIDCeiling
        nextProducerID = stored.producerIDCeiling
    }

    /// Adds or replaces a topic and persists the catalogue.
    mutating func put(_ name: String, _ configuration: TopicConfiguration) throws {
        let previous = topics[name]
        topics[name] = configuration
        do {
            try save()
        } catch {
            topics[name] = previous
            throw error
        }
    }

    /// Removes a topic and persists the catalogue.
    mutating func remove(_ name: String) throws {
        guard let previous = topics.removeValue(forKey: name) else { return }
        do {
            try save()
        } catch {
            topics[name] = previous
            throw error
        }
    }

    /// A producer id never handed out before in this data directory.
    mutating func allocateProducerID() throws -> Int64 {
        if nextProducerID >= producerIDCeiling {
            producerIDCeiling = nextProducerID + TopicRegistry.producerIDBlockSize
            try save()
        }
        defer { nextProducerID += 1 }
        return nextProducerID
    }

    private func save() throws {
        var stored = StoredCatalogue(version: 1, producerIDCeiling: producerIDCeiling, topics: [:])
        for (name, configuration) in topics { stored.topics[name] = StoredTopic(configuration) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try encoder.encode(stored)
        try fileSystem.writeAtomically(Array(data), to: path)
    }
}

/// The JSON shape of `topics.json`.
private struct StoredCatalogue: Codable {
    var version: Int
    var producerIDCeiling: Int64
    var topics: [String: StoredTopic]
}

/// A ``TopicConfiguration`` as JSON, with Kafka's config names.
private struct StoredTopic: Codable {
    var partitions: Int
    var retentionMs: Int64?
    var retentionBytes: Int64?
    var cleanupPolicy: String
    var deleteRetentionMs: Int64
    var fsync: String
    var maxMessageBytes: Int
    var segmentBytes: Int
    var segmentMs: Int64
    var indexIntervalBytes: Int
    var compression: String
    var extra: [String: String]

    init(_ c: TopicConfiguration) {
        partitions = c.partitions
        retentionMs = c.retentionMilliseconds
        retentionBytes = c.retentionBytes
        cleanupPolicy = c.cleanupPolicy.rawValue
        deleteRetentionMs = c.deleteRetentionMilliseconds
        fsync = c.fsync.description
        maxMessageBytes = c.maximumRecordBytes
        segmentBytes = c.segmentBytes
        segmentMs = c.segmentMilliseconds
        indexIntervalBytes = c.indexIntervalBytes
        compression = c.compression.rawValue
        extra = c.extra
    }

    func configuration(path: String, topic: String) throws -> TopicConfiguration {
        guard let policy = CleanupPolicy(rawValue: cleanupPolicy),
              let fsyncPolicy = FsyncPolicy(fsync),
              let codec = CompressionCodec(rawValue: compression) else {
            throw EddyError(.corrupt, "\(path): topic \(topic) has an unknown cleanup policy, fsync policy or compression")
        }
        let configuration = TopicConfiguration(
            partitions: partitions, retentionMilliseconds: retentionMs, retentionBytes: retentionBytes,
            cleanupPolicy: policy, deleteRetentionMilliseconds: deleteRetentionMs, fsync: fsyncPolicy,
            maximumRecordBytes: maxMessageBytes, segmentBytes: segmentBytes, segmentMilliseconds: segmentMs,
            indexIntervalBytes: indexIntervalBytes, compression: codec, extra: extra)
        do {
            try configuration.validate()
        } catch let error as EddyError {
            throw EddyError(.corrupt, "\(path): topic \(topic): \(error.message)")
        }
        return configuration
    }
}
