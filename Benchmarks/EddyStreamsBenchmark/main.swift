// Throughput of one StreamTask on one thread, without a log: records are generated in memory
// and handed to the task in batches of 1,000; outputs are counted and dropped. This isolates
// the processing engine; issue #5's `eddy bench streams` measures the same topologies end to
// end on the embedded log.
//
// Run: swift run -c release EddyStreamsBenchmark [records] [only]   (default 2,000,000 records;
// `only` = stateless | windowed | windowed-memory | join runs one group)
import EddyCore
import EddyState
import EddyStreams
import Foundation

let total = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2_000_000 : 2_000_000
let users = (0..<10_000).map { Array("user-\($0)".utf8) }
var records: [ConsumerRecord] = []
records.reserveCapacity(total)
for i in 0..<total {
    records.append(ConsumerRecord(topic: "input", partition: 0, offset: Int64(i), timestamp: Int64(i),
                                  key: users[(i &* 7919) % users.count], value: try Int64Serde().serialize(Int64(i % 1000))))
}

func wanted(_ group: String) -> Bool { CommandLine.arguments.count <= 2 || CommandLine.arguments[2] == group }

@MainActor func report(_ name: String, _ result: (seconds: Double, outputs: Int)) {
    print("\(name): \(Int(Double(records.count) / result.seconds)) records/s (\(records.count) records in \(String(format: "%.2f", result.seconds)) s, \(result.outputs) outputs)")
}

// (a) stateless: filter + mapValues.
if wanted("stateless") {
    let b = StreamsBuilder()
    b.stream("input", key: Serdes.string, value: Serdes.int64)
        .filter { _, v in v % 10 != 0 }
        .mapValues { $0 * 2 }
        .to("output", key: Serdes.string, value: Serdes.int64)
    report("stateless filter+mapValues", try _TaskBenchmark.run(try b.build(), topic: "input", records: records))
}

// (b) windowed count and sum per user, 10-second tumbling windows, emit-final.
func windowed() throws -> Topology {
    let b = StreamsBuilder()
    let w = b.stream("input", key: Serdes.string, value: Serdes.int64).groupByKey()
        .windowed(by: .of(size: 10_000)).emit(.onWindowClose)
    w.count(materializedAs: "counts").toStream()
        .to("counts", key: Serdes.timeWindowed(Serdes.string, windowSize: 10_000), value: Serdes.optional(Serdes.int64))
    w.aggregate(materializedAs: "sums", valueSerde: Int64Serde(), initializer: { Int64(0) }) { _, v, s in s + v }.toStream()
        .to("sums", key: Serdes.timeWindowed(Serdes.string, windowSize: 10_000), value: Serdes.optional(Serdes.int64))
    return try b.build()
}
if wanted("windowed") || wanted("windowed-memory") {
    report("windowed count+sum, in-memory stores", try _TaskBenchmark.run(try windowed(), topic: "input", records: records))
}
if wanted("windowed") {
    let directory = NSTemporaryDirectory() + "eddy-bench-\(UUID().uuidString)"
    report("windowed count+sum, RocksDB stores", try _TaskBenchmark.run(try windowed(), topic: "input", records: records,
                                                                         rocksDBDirectory: directory))
    try? FileManager.default.removeItem(atPath: directory)
}

// (c) stream–table join against a 10,000-row table (filled through the table's store).
if wanted("join") {
    let b = StreamsBuilder()
    let table = b.table("users", key: Serdes.string, value: Serdes.string, materializedAs: "users")
    b.stream("input", key: Serdes.string, value: Serdes.int64)
        .join(table) { amount, region in "\(region):\(amount)" }
        .to("output", key: Serdes.string, value: Serdes.string)
    report("stream-table join", try _TaskBenchmark.run(try b.build(), topic: "input", records: records) { stores in
        let store = stores["users"] as! InMemoryTaskKeyValueStore<String, String>
        for (i, u) in users.enumerated() { store.put(String(decoding: u, as: UTF8.self), "region-\(i % 20)") }
    })
}
