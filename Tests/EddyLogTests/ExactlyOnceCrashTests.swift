import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// A real child process copies a topic exactly once (transactions with consumer offsets) and is
/// killed with SIGKILL at random moments; after every restart the log recovers (open
/// transactions aborted, commits past their commit point completed). The copy must hold every
/// input record exactly once. `EDDY_LONG_TESTS=1` runs more rounds.
@Suite struct ExactlyOnceCrashTests {
    @Test func aCopyKilledAtRandomMomentsStillHoldsEveryRecordExactlyOnce() throws {
        let seed = clientTestSeed("aCopyKilledAtRandomMomentsStillHoldsEveryRecordExactlyOnce")
        var random = ClientTestRandom(seed: seed)
        let long = ProcessInfo.processInfo.environment["EDDY_LONG_TESTS"] == "1"
        let rounds = long ? 60 : 8
        let total = long ? 40_000 : 5_000
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        do {
            let log = try EmbeddedLog(directory: directory)
            try log.admin.createTopic("in", configuration: TopicConfiguration(partitions: 2))
            try log.admin.createTopic("out", configuration: TopicConfiguration(partitions: 2))
            let producer = try log.makeProducer(ProducerConfiguration())
            for i in 0..<total { try producer.send(ProducerRecord(topic: "in", key: payload("k\(i % 97)"), value: payload("v\(i)"))) }
            try producer.close()
            try log.close()
        }
        var finished = false
        var interrupted = 0
        for _ in 0..<rounds {
            let child = try LockHolderChild(directory: directory, mode: "eos-copy", arguments: ["\(total)"])
            // Kill at a random moment after the child has made progress (its first commit), so
            // that a slow machine's start-up time cannot turn every round into a kill at start.
            let first = child.firstLine()
            if first.hasPrefix("committed") {
                usleep(useconds_t(random.next() % 40_000))
                child.kill()
                if !child.remainingOutput().contains("done") { interrupted += 1 }
            } else {
                child.kill()
                #expect(first == "done", "seed \(seed): child said '\(first)'")
                break
            }
        }
        print("exactly-once crash test: \(interrupted) of \(rounds) runs killed in the middle of the copy")
        // The kills must land while the copy is under way, or the test proves nothing.
        #expect(interrupted >= 1, "seed \(seed): no round was killed in the middle of the copy")
        // A last run to the end.
        let child = try LockHolderChild(directory: directory, mode: "eos-copy", arguments: ["\(total)"])
        var line = ""
        repeat { line = child.firstLine() } while line.hasPrefix("committed")
        finished = line == "done"
        _ = child.finish()
        #expect(finished, "seed \(seed): child ended with '\(line)'")

        let log = try EmbeddedLog(directory: directory)
        defer { try? log.close() }
        let committed = try log.admin.committedOffsets(group: "eos-copy")
        #expect(committed.values.reduce(0, +) == Int64(total), "seed \(seed)")
        let reader = try log.makeConsumer(ConsumerConfiguration(isolation: .readCommitted))
        try reader.assign([TopicPartition("out", 0), TopicPartition("out", 1)])
        let records = try pollRecords(reader, count: total + 1, timeoutMilliseconds: 2_000)
        let values = records.map { String(decoding: $0.value!, as: UTF8.self) }
        #expect(values.count == total, "seed \(seed): \(values.count) records in the copy")
        #expect(Set(values) == Set((0..<total).map { "v\($0)" }), "seed \(seed)")
        for partition in try log.admin.describeTopic("out").partitions {
            #expect(partition.lastStableOffset == partition.endOffset)
        }
    }
}
