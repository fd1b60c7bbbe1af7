import EddyCore
import EddyState
import Foundation

/// Runs one sub-topology's ``StreamTask`` over records in memory, for benchmarks. No API
/// promise (the name starts with `_`). The records are handed to the task in batches of
/// 1,000, as a stream thread does after a fetch; outputs are counted and dropped.
public enum _TaskBenchmark {
    final class CountingCollector: RecordCollector {
        var count = 0
        func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
            count += 1
        }
        func partitionCount(of topic: String) -> Int? { 1 }
    }

    /// Processes `records` (all from partition 0 of `topic`) with sub-topology 0 of `topology`
    /// and returns the elapsed seconds and the number of output records. `prepare` may fill
    /// stores first (by name); with `rocksDBDirectory`, stores with known serdes live in RocksDB.
    public static func run(_ topology: Topology, topic: String, records: [ConsumerRecord],
                           rocksDBDirectory: String? = nil,
                           prepare: ([String: any TaskStore]) throws -> Void = { _ in }) throws -> (seconds: Double, outputs: Int) {
        let collector = CountingCollector()
        var directory: TaskStateDirectory? = nil
        if let rocksDBDirectory {
            directory = try TaskStateDirectory(stateDirectory: rocksDBDirectory, application: "bench", task: "0_0",
                                               environment: try RocksDBEnvironment())
        }
        defer { directory?.close() }
        let task = try StreamTask(topology: topology, subtopology: topology.subtopologies[0], id: TaskID(subtopology: 0, partition: 0),
                                  applicationID: "bench", collector: collector, globalStores: [:], wallClockTime: 0,
                                  stateDirectory: directory)
        defer { task.close() }
        try task.initialize()
        try prepare(task.stores)
        let start = DispatchTime.now().uptimeNanoseconds
        var i = 0
        let partition = TopicPartition(topic, 0)
        while i < records.count {
            let end = min(i + 1000, records.count)
            task.addRecords(records[i..<end], from: partition)
            try task.processAll()
            i = end
            if i % 100_000 == 0 { try task.flush() }
        }
        try task.flush()
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, collector.count)
    }
}
