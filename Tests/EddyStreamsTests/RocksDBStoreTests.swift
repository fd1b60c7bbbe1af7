import EddyCore
import EddyState
@testable import EddyStreams
import Foundation
import Testing

@Suite("RocksDB stores in the test driver")
struct RocksDBStoreTests {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "eddy-streams-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func topology() throws -> Topology {
        let builder = StreamsBuilder()
        let grouped = builder.stream("in", key: Serdes.string, value: Serdes.int64).groupByKey()
        grouped.count(materializedAs: "counts")
        grouped.windowed(by: .of(size: 10, grace: 5)).count(materializedAs: "windowed").toStream()
            .to("windowed", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        grouped.windowed(by: SessionWindows.of(inactivityGap: 5)).reduce(materializedAs: "sessions", retention: 100) { $0 + $1 }
        builder.table("t", key: Serdes.string, value: Serdes.string, materializedAs: "table")
        return try builder.build()
    }

    @Test("RocksDB stores give the same results as in-memory stores and survive a restart")
    func sameResultsAndDurable() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let inputs: [(String, Int64, Int64)] = [("a", 1, 1), ("b", 2, 3), ("a", 3, 12), ("a", 4, 4), ("b", 5, 30), ("a", 6, 2)]
        var outputs: [[String]] = []
        for backend in [StoreBackend.inMemory, .rocksDB(directory: directory)] {
            let driver = try TopologyTestDriver(try Self.topology(), stores: backend)
            let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
            for (k, v, t) in inputs { try input.pipeInput(key: k, value: v, timestamp: t) }
            try driver.createInputTopic("t", key: Serdes.string, value: Serdes.string).pipeInput(key: "x", value: "y")
            let windowed = try readWindowed(driver, "windowed", keySerde: Serdes.timeWindowed(Serdes.string, windowSize: 10))
            outputs.append(windowed.map(\.description))
            #expect(try driver.keyValueStore("counts", key: String.self, value: Int64.self)?.get("a") == 4)
            #expect(try driver.keyValueStore("table", key: String.self, value: String.self)?.get("x") == "y")
            let sessions = try #require(driver.sessionStore("sessions", key: String.self, value: Int64.self))
            let got = try sessions.all().map { "\($0.key.key)\($0.key.window.start)-\($0.key.window.end)=\($0.value)" }
            // a@4 and a@2 arrive after stream time 12 passed the end (+ grace 0) of session [1,1]: late.
            #expect(got == ["a1-1=1", "b3-3=2", "a12-12=3", "b30-30=5"], "\(got)")
            if case .rocksDB = backend {
                #expect(driver.keyValueStore("counts", key: String.self, value: Int64.self) is PersistentTaskKeyValueStore<String, Int64>)
            }
            driver.close()
        }
        #expect(outputs[0] == outputs[1])
        #expect(driver2Count(directory) == 4)
    }

    /// Reopens the RocksDB state directory with a fresh driver: the committed count is there.
    func driver2Count(_ directory: String) -> Int64? {
        guard let driver = try? TopologyTestDriver(try Self.topology(), stores: .rocksDB(directory: directory)) else { return nil }
        defer { driver.close() }
        return try? driver.keyValueStore("counts", key: String.self, value: Int64.self)?.get("a")
    }
}
