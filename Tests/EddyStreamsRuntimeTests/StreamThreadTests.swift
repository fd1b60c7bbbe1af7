import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Testing

/// Rebalances, error handlers and failed commits of the stream threads.
@Suite("StreamThread", .serialized)
struct StreamThreadTests {
    @Test("a second worker joining mid-run takes over tasks, and the output stays exact")
    func rebalanceOnJoin() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(3_000)
        let first = try fixture.application(threads: 1, instanceID: "a")
        try first.start()
        Thread.sleep(forTimeInterval: 0.2)
        let second = try fixture.application(threads: 1, instanceID: "b")
        try second.start()
        try fixture.produceLines(1_000)
        // Both idle with nothing processed in between: the repartition topic crosses workers.
        var idle = false
        for _ in 0..<20 where !idle {
            idle = first.waitUntilIdle(timeout: .seconds(30)) && second.waitUntilIdle(timeout: .seconds(30))
                && first.waitUntilIdle(timeout: .seconds(30))
        }
        #expect(idle)
        #expect(first.failure == nil && second.failure == nil, "\(String(describing: first.failure)) \(String(describing: second.failure))")
        #expect(second.processedRecordCount > 0, "the second worker got no tasks")
        first.close()
        second.close()
        StreamsApplicationTests.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }

    @Test("log-and-continue skips and counts records that cannot be deserialised")
    func logAndContinue() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(200)
        try fixture.produceRaw([0xFF, 0xFE, 0x80])
        try fixture.produceLines(200)
        try fixture.produceRaw([0xC3])
        let logged = Lines()
        let app = try fixture.application(onError: .logAndContinue, log: { logged.append($0) })
        try app.start()
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        #expect(app.skippedRecordCount == 2)
        app.close()
        #expect(logged.all.filter { $0.contains("skipped record words-") }.count == 2)
        StreamsApplicationTests.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }

    @Test("the fail handler stops the thread with topic, partition and offset, and the application is in error")
    func failHandler() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(50)
        try fixture.produceRaw([0xFF])
        let app = try fixture.application(threads: 1, onError: .fail)
        try app.start()
        let deadline = Date().addingTimeInterval(30)
        while app.state != .error && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(app.state == .error)
        let message = app.failure?.message ?? ""
        #expect(message.contains("words-") && message.contains("offset") && message.contains("UTF-8"), "\(message)")
        app.close()
        #expect(app.state == .notRunning)
    }

    @Test("a fenced producer's commit fails, the tasks re-initialise from committed state, and the output stays exact")
    func fencedCommitRecovers() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(300)
        let logged = Lines()
        let app = try fixture.application(threads: 1, log: { logged.append($0) })
        try app.start()
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        // A new incarnation of the thread's transactional id fences the thread's producer.
        let zombie = try fixture.log.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "wc-0")
        try zombie.initTransactions()
        try fixture.produceLines(300)
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        #expect(app.failure == nil)
        app.close()
        #expect(logged.all.contains { $0.contains("commit failed") }, "the commit was never fenced: \(logged.all)")
        StreamsApplicationTests.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }
}

/// Log lines collected from any thread.
final class Lines: @unchecked Sendable {
    // @unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
