import EddyCore
import EddyState
import Foundation
import Testing

@Suite("Task state directories")
struct TaskStateDirectoryTests {
    @Test("a second open of a task directory in the same process is refused with locked")
    func lockedInProcess() throws {
        let fixture = try StoreFixture(.rocksDB)
        let error = #expect(throws: EddyError.self) { _ = try fixture.openDirectory() }
        #expect(error?.code == .locked)
        fixture.directory!.close()
        let reopened = try fixture.openDirectory()
        reopened.close()
    }

    @Test("another process cannot take the lock of an open task directory")
    func lockedAcrossProcesses() throws {
        let fixture = try StoreFixture(.rocksDB)
        func otherProcessCanLock() throws -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            process.arguments = ["--nonblock", "\(fixture.taskPath)/.lock", "true"]
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        #expect(try !otherProcessCanLock())
        fixture.directory!.close()
        #expect(try otherProcessCanLock())
    }

    @Test("data and checkpoints survive closing and reopening")
    func persistence() throws {
        let fixture = try StoreFixture(.rocksDB)
        let log = FakeLog()
        var store = try fixture.keyValueStore(changelog: TopicPartition("app-kv-changelog", 0))
        for i in 0..<1_000 { try store.put(bytes("key\(i)"), bytes("value\(i)")) }
        try store.commit(flushing: log.makeProducer())
        try store.put(bytes("uncommitted"), bytes("lost"))
        store.close()
        try fixture.reopen()
        #expect(fixture.directory!.wasReset == false)
        store = try fixture.keyValueStore(changelog: TopicPartition("app-kv-changelog", 0))
        #expect(store.checkpoint == 1_000)
        #expect(try store.all().count == 1_000)
        #expect(try store.get(bytes("key500")) == bytes("value500"))
        #expect(try store.get(bytes("uncommitted")) == nil)
    }

    @Test("a corrupt database is deleted with a log line and its stores restore in full")
    func corruptDirectoryRestores() throws {
        let fixture = try StoreFixture(.rocksDB)
        let log = FakeLog()
        let changelog = TopicPartition("app-kv-changelog", 0)
        var store = try fixture.keyValueStore(changelog: changelog)
        for i in 0..<100 { try store.put(bytes("key\(i)"), bytes("value\(i)")) }
        try store.commit(flushing: log.makeProducer())
        store.close()
        fixture.directory!.close()
        // Destroy the manifest the CURRENT file points to.
        let databasePath = "\(fixture.taskPath)/rocksdb"
        let current = try String(contentsOfFile: "\(databasePath)/CURRENT", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try Data(repeating: 0xAB, count: 4_096).write(to: URL(fileURLWithPath: "\(databasePath)/\(current)"))

        try fixture.reopen()
        #expect(fixture.directory!.wasReset)
        #expect(fixture.logLines.lines.contains { $0.contains("unreadable") && $0.contains("restore in full") })
        store = try fixture.keyValueStore(changelog: changelog)
        #expect(store.checkpoint == nil)
        #expect(try store.all().isEmpty)
        try StateRestorer.restore(store, consumer: log.makeConsumer())
        #expect(try store.all().count == 100)
        #expect(store.checkpoint == 100)
    }

    @Test("a missing database is created with a log line")
    func missingDirectory() throws {
        let fixture = try StoreFixture(.rocksDB)
        #expect(fixture.directory!.wasReset)
        #expect(fixture.logLines.lines.contains { $0.contains("missing") })
        fixture.directory!.close()
        try FileManager.default.removeItem(atPath: "\(fixture.taskPath)/rocksdb")
        try fixture.reopen()
        #expect(fixture.directory!.wasReset)
    }

    @Test("restore files left by a killed restoration are removed when the directory opens; the data stays")
    func leftoverRestoreFiles() throws {
        let fixture = try StoreFixture(.rocksDB)
        var store = try fixture.keyValueStore()
        try store.put(bytes("k"), bytes("v"))
        try store.commit()
        store.close()
        fixture.directory!.close()
        let leftovers = ["rocksdb.restore-1.sst", "rocksdb.restore-17.sst"].map { "\(fixture.taskPath)/\($0)" }
        for file in leftovers { #expect(FileManager.default.createFile(atPath: file, contents: Data(count: 4_096))) }
        let unrelated = "\(fixture.taskPath)/notes.sst"
        #expect(FileManager.default.createFile(atPath: unrelated, contents: Data()))
        try fixture.reopen()
        for file in leftovers { #expect(!FileManager.default.fileExists(atPath: file), "\(file)") }
        #expect(FileManager.default.fileExists(atPath: unrelated))
        #expect(fixture.logLines.lines.filter { $0.contains("left by an interrupted restoration") }.count == 2)
        store = try fixture.keyValueStore()
        #expect(try store.get(bytes("k")) == bytes("v"))
    }

    @Test("a store cannot be opened twice and 'default' is reserved")
    func storeNames() throws {
        let fixture = try StoreFixture(.rocksDB)
        let store = try fixture.keyValueStore("counts")
        #expect(performing: { _ = try fixture.keyValueStore("counts") }, throws: { ($0 as? EddyError)?.code == .invalidState })
        store.close()
        _ = try fixture.keyValueStore("counts")
        #expect(performing: { _ = try fixture.keyValueStore("default") }, throws: { ($0 as? EddyError)?.code == .invalidName })
        #expect(performing: { _ = try fixture.keyValueStore("a/b") }, throws: { ($0 as? EddyError)?.code == .invalidName })
    }

    @Test("the write-buffer budget is shared by every open store of the worker")
    func writeBufferBudget() throws {
        let configuration = RocksDBConfiguration(blockCacheBytes: 8 << 20, writeBufferBytes: 64 << 20,
                                                 minimumWriteBufferBytesPerStore: 1 << 20, maximumWriteBuffersPerStore: 2)
        let fixture = try StoreFixture(.rocksDB, configuration: configuration)
        let environment = fixture.environment
        #expect(environment.writeBufferBytesPerStore(openStores: 1) == 32 << 20)
        #expect(environment.writeBufferBytesPerStore(openStores: 4) == 8 << 20)
        #expect(environment.writeBufferBytesPerStore(openStores: 1_000) == 1 << 20)
        var stores: [any KeyValueStore] = []
        for i in 0..<4 { stores.append(try fixture.keyValueStore("s\(i)")) }
        #expect(environment.openStoreCount == 4)
        // A second task of the same worker shares the budget.
        let otherTask = try TaskStateDirectory(stateDirectory: fixture.root, application: "app", task: "0_1", environment: environment)
        let other = try otherTask.keyValueStore(named: "s0")
        #expect(environment.openStoreCount == 5)
        other.close()
        otherTask.close()
        stores.removeLast().close()
        #expect(environment.openStoreCount == 3)
        fixture.directory!.close()
        #expect(environment.openStoreCount == 0)
    }

    @Test("opening many stores resizes write buffers only when the rounded share changes")
    func writeBufferResizesStayFew() throws {
        let configuration = RocksDBConfiguration(blockCacheBytes: 8 << 20, writeBufferBytes: 64 << 20,
                                                 minimumWriteBufferBytesPerStore: 1 << 20, maximumWriteBuffersPerStore: 2)
        let fixture = try StoreFixture(.rocksDB, configuration: configuration)
        let environment = fixture.environment
        // Shares 32, 16, 10.7, 8, 6.4, … MiB round down to 32, 16, 8, 8, 4, …: never above the share.
        for stores in 1...64 {
            let applied = environment.appliedWriteBufferBytes(openStores: stores)
            #expect(applied <= environment.writeBufferBytesPerStore(openStores: stores))
            #expect(applied.nonzeroBitCount == 1 && applied >= 1 << 20)
        }
        var stores: [any KeyValueStore] = []
        for i in 0..<16 { stores.append(try fixture.keyValueStore("s\(i)")) }
        // Resizing every family on every open would take 1 + 2 + … + 16 = 136 OPTIONS rewrites;
        // rounded shares change at 2, 3, 5 and 9 open stores: 16 first sizes + 1 + 2 + 4 + 8.
        #expect(environment.writeBufferResizeCount == 31)
        for store in stores { store.close() }
        fixture.directory!.close()
    }

    @Test("configuration is validated and the options escape hatch reaches RocksDB")
    func configuration() throws {
        #expect(performing: { _ = try RocksDBEnvironment(configuration: RocksDBConfiguration(blockCacheBytes: 10)) },
                throws: { ($0 as? EddyError)?.code == .invalidArgument })
        var good = StoreFixture.smallConfiguration
        good.compression = .zstd
        good.bottommostCompression = .lz4
        good.options = "level0_file_num_compaction_trigger=8;max_bytes_for_level_base=1048576"
        let fixture = try StoreFixture(.rocksDB, configuration: good)
        let store = try fixture.keyValueStore()
        try store.put(bytes("a"), bytes("1"))
        try store.commit()
        #expect(try store.get(bytes("a")) == bytes("1"))

        var bad = StoreFixture.smallConfiguration
        bad.options = "no_such_option=1"
        #expect(performing: { _ = try StoreFixture(.rocksDB, configuration: bad) },
                throws: { ($0 as? EddyError)?.code == .invalidArgument })
    }
}
