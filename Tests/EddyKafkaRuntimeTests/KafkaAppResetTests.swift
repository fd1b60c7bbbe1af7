import EddyCore
import EddyKafka
import EddyState
import Foundation
import Testing

/// `eddy app reset APP --bootstrap …` against librdkafka's mock cluster (in this test process):
/// the inputs' committed offsets are rewound; the mock has no DescribeGroups, OffsetDelete or
/// DeleteTopics, so the command warns, leaves the internal topics, and fails at once with a
/// message naming them (no hang on a request the mock never answers, no crash).
@Suite struct KafkaAppResetTests {
    @Test func appResetRewindsTheInputsAndSaysClearlyThatTheMockCannotDeleteInternalTopics() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let log = try KafkaLog(mockCluster: cluster)
        let app = uniqueKafkaName("reset")
        let input = app + "-lines"
        let repartition = "\(app)-words-repartition"
        let changelog = ChangelogTopic.name(application: app, store: "counts")
        try log.admin.createTopic(input, configuration: TopicConfiguration(partitions: 2))
        try log.admin.createTopic(repartition, configuration: TopicConfiguration(partitions: 2))
        try log.admin.createTopic(changelog, configuration: .compacted(partitions: 2))
        let producer = try log.makeProducer(ProducerConfiguration())
        for i in 0..<10 { try producer.send(ProducerRecord(topic: input, partition: i % 2, value: Array("line \(i)".utf8))) }
        try producer.flush()
        try log.admin.alterCommittedOffsets(group: app, offsets: [
            TopicPartition(input, 0): 5, TopicPartition(input, 1): 4, TopicPartition(repartition, 0): 3,
        ])
        #expect(try log.admin.committedOffsets(group: app)[TopicPartition(input, 0)] == 5)

        let directory = FileManager.default.temporaryDirectory.path + "/eddy-kafka-reset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(directory)/state/\(app)/1_0", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let began = Date()
        let reset = try EddyProcess(["app", "reset", app, "--bootstrap", cluster.bootstrapServers,
                                     "--input-topics", input, "--state-dir", "\(directory)/state"],
                                    directory: directory, name: "reset")
        #expect(reset.wait(seconds: 60), "eddy app reset hung: \(reset.standardError)")
        let seconds = Date().timeIntervalSince(began)
        print("eddy app reset on the mock took \(String(format: "%.1f", seconds)) s; stderr: \(reset.standardError)")
        #expect(reset.process.terminationReason == .exit, "crashed: \(reset.standardError)")
        #expect(reset.process.terminationStatus == 1)
        let stderr = reset.standardError
        #expect(stderr.contains("does not implement DescribeGroups"), "\(stderr)")
        #expect(stderr.contains("incomplete") && stderr.contains("internal topic \(repartition) not deleted")
                && stderr.contains("internal topic \(changelog) not deleted") && stderr.contains("DeleteTopics"), "\(stderr)")
        #expect(reset.standardOutput.contains("2 input partition(s) rewound"), "\(reset.standardOutput)")
        // The inputs were rewound to their first offsets; the local state is gone.
        let committed = try log.admin.committedOffsets(group: app)
        #expect(committed[TopicPartition(input, 0)] == 0 && committed[TopicPartition(input, 1)] == 0, "\(committed)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/state/\(app)"))
        #expect(Set(try log.admin.listTopics()).isSuperset(of: [repartition, changelog]))
    }
}
