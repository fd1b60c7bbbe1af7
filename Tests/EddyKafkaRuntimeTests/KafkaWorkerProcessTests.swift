import EddyCore
import EddyKafka
import EddyState
import Foundation
import Testing

/// `eddy run wordcount --bootstrap …` worker processes of one application on librdkafka's mock
/// cluster (in this test process): the group splits the tasks between them, one worker is
/// SIGKILLed, the survivors take its tasks over after the session timeout (6 s here, set
/// through `EDDY_KAFKA_PROPERTIES`), and the final per-word counts lose nothing. At-least-once:
/// the mock does not store offsets sent in a transaction, so exactly-once cannot be shown on
/// it; duplicates (counts above the truth) are allowed, counted and printed.
///
/// The mock's Admin CreateTopics times out and the workers' clients cannot reach this process's
/// mock object, so the test creates every topic (input, repartition, changelog, output) with
/// `rd_kafka_mock_topic_create` first; the workers find them and create nothing.
@Suite(.serialized) struct KafkaWorkerProcessTests {
    static let partitions = 6
    static let vocabulary = (0..<40).map { "w\($0)" }

    @Test(arguments: [2, 3])
    func workersSplitTheTasksAndSurvivorsTakeOverAKilledWorkersTasksLosingNothing(workers: Int) throws {
        let seed = kafkaRuntimeSeed("workers=\(workers)")
        var random = SeededGenerator(seed: seed)
        let cluster = try KafkaMockCluster(brokers: 3)
        let log = try KafkaLog(mockCluster: cluster)
        let app = uniqueKafkaName("wc\(workers)")
        let input = app + "-lines", output = app + "-counts"
        for topic in [input, "\(app)-words-repartition", output] {
            try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: Self.partitions))
        }
        try log.admin.createTopic(ChangelogTopic.name(application: app, store: "counts"),
                                  configuration: .compacted(partitions: Self.partitions))
        let directory = FileManager.default.temporaryDirectory.path + "/eddy-kafka-workers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var expected: [String: Int64] = [:]
        let producer = try log.makeProducer(ProducerConfiguration())
        func produce(_ lines: Int) throws {
            for _ in 0..<lines {
                let words = (0..<4).map { _ in Self.vocabulary[Int(random.next() % UInt64(Self.vocabulary.count))] }
                for word in words { expected[word, default: 0] += 1 }
                try producer.send(ProducerRecord(topic: input, partition: Int(random.next() % UInt64(Self.partitions)),
                                                 key: nil, value: Array(words.joined(separator: " ").utf8)))
            }
            try producer.flush()
        }
        try produce(300)

        var processes: [EddyProcess] = []
        defer { for p in processes { p.kill(SIGKILL); p.wait(seconds: 5) } }
        func stateDirectory(_ i: Int) -> String { "\(directory)/state-\(i)" }
        for i in 0..<workers {
            processes.append(try EddyProcess(
                ["run", "wordcount", "--bootstrap", cluster.bootstrapServers, "--guarantee", "at-least-once",
                 "--app-id", app, "--instance-id", "w\(i)", "--input", input, "--output", output,
                 "--state-dir", stateDirectory(i), "--commit-interval-ms", "200"],
                directory: directory, name: "worker-\(i)",
                environment: ["EDDY_KAFKA_PROPERTIES": "session.timeout.ms=6000,heartbeat.interval.ms=500"]))
        }
        /// Task directories each worker has opened so far (`STATE/APP/1_3`).
        func tasks(_ i: Int) -> Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: "\(stateDirectory(i))/\(app)")) ?? [])
        }
        func diagnostics() -> String {
            processes.enumerated().map { "worker \($0): \($1.standardError.suffix(1_500))" }.joined(separator: "\n")
        }
        /// Last count per word in the output (a word's counts live in one partition, in order).
        func finalCounts() throws -> [String: Int64] {
            var counts: [String: Int64] = [:]
            for record in try readAll(log, topic: output) {
                guard let key = record.key, let value = record.value else { continue }
                counts[String(decoding: key, as: UTF8.self)] = Int64(String(decoding: value, as: UTF8.self))
            }
            return counts
        }
        func waitForCounts(_ what: String, seconds: Int64) throws -> [String: Int64] {
            let deadline = millisecondsNow() + seconds * 1000
            var counts: [String: Int64] = [:]
            while millisecondsNow() < deadline {
                counts = try finalCounts()
                if expected.allSatisfy({ counts[$0.key, default: 0] >= $0.value }) { return counts }
                Thread.sleep(forTimeInterval: 0.5)
            }
            let missing = expected.filter { counts[$0.key, default: 0] < $0.value }
            throw KafkaRuntimeTestFailure("\(what): \(missing.count) word(s) short after \(seconds) s, e.g. \(missing.prefix(3))\n\(diagnostics())")
        }

        _ = try waitForCounts("before the kill", seconds: 40)
        // Workers that joined late get their share in a rebalance: wait for every one to own a task.
        let splitDeadline = millisecondsNow() + 20_000
        while (0..<workers).contains(where: { tasks($0).isEmpty }) && millisecondsNow() < splitDeadline {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let before = (0..<workers).map(tasks)
        // Only the counting sub-topology has a persistent store: one directory per partition.
        let all = before.reduce(Set<String>()) { $0.union($1) }
        print("workers=\(workers) tasks before the kill: \(before.map { $0.sorted() })")
        // Split: every worker owns tasks, together they own every counting task.
        #expect(before.allSatisfy { !$0.isEmpty }, "a worker got no task: \(before)")
        #expect(all.count == Self.partitions, "\(before)")

        let victim = Int(random.next() % UInt64(workers))
        processes[victim].kill(SIGKILL)
        processes[victim].wait(seconds: 5)
        let killedAt = millisecondsNow()
        try produce(300)
        let counts = try waitForCounts("after killing worker \(victim)", seconds: 45)
        let takeover = Double(millisecondsNow() - killedAt) / 1000
        let after = (0..<workers).map(tasks)
        let survivors = (0..<workers).filter { $0 != victim }
        // The victim's tasks were opened by a survivor (the directories appear there).
        let orphaned = before[victim].subtracting(survivors.reduce(Set<String>()) { $0.union(before[$1]) })
        let adopted = survivors.reduce(Set<String>()) { $0.union(after[$1]) }
        #expect(adopted.isSuperset(of: orphaned), "victim's tasks \(orphaned.sorted()) not taken over: \(after)")
        #expect(adopted.isSuperset(of: all))
        let restores = survivors.map { processes[$0].standardError }.joined().components(separatedBy: "restored store counts").count - 1
        let duplicates = expected.reduce(Int64(0)) { $0 + counts[$1.key, default: 0] - $1.value }
        print("workers=\(workers): killed worker \(victim) owning \(before[victim].sorted()); all counts complete \(String(format: "%.1f", takeover)) s after the kill; \(restores) store restore(s) by survivors; \(duplicates) duplicate count(s) over \(expected.values.reduce(0, +)) words (at-least-once)")
        #expect(expected.allSatisfy { counts[$0.key, default: 0] >= $0.value })
        #expect(Set(counts.keys) == Set(expected.keys))

        for i in survivors { processes[i].kill(SIGTERM) }
        for i in survivors {
            #expect(processes[i].wait(seconds: 30), "worker \(i) did not stop on SIGTERM")
            #expect(processes[i].process.terminationStatus == 0, "worker \(i): \(processes[i].standardError.suffix(800))")
        }
    }
}
