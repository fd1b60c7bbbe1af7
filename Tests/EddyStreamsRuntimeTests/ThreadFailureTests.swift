import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Synchronization
import Testing

/// What an application does when a stream thread fails (``ThreadFailureResponse``): replace it
/// and go on, or stop every thread and stay in `error`.
@Suite("Stream thread failures", .serialized)
struct ThreadFailureTests {
    /// Fails the processing of the `failAt`-th record it sees (counted over all threads), once.
    final class OneFailure: Sendable {
        let seen = Atomic<Int>(0)
        let failAt: Int
        init(failAt: Int) { self.failAt = failAt }
        func check() throws {
            if seen.add(1, ordering: .relaxed).newValue == failAt {
                throw EddyError(.invalidState, "injected failure at record \(failAt)")
            }
        }
    }

    static func topology(_ failure: OneFailure) throws -> Topology {
        let builder = StreamsBuilder()
        builder.stream("words", key: Serdes.optional(Serdes.string), value: Serdes.string)
            .mapValues { value in
                try failure.check()
                return value.uppercased()
            }
            .to("upper", key: Serdes.optional(Serdes.string), value: Serdes.string)
        return try builder.build()
    }

    func application(_ fixture: RuntimeFixture, _ failure: OneFailure, response: ThreadFailureResponse,
                     lines: LineLog) throws -> StreamsApplication {
        try StreamsApplication(topology: Self.topology(failure), backend: fixture.log,
                               configuration: StreamsConfiguration(applicationID: "failures", stateDirectory: fixture.stateDirectory,
                                                                   threads: 2, processingGuarantee: .exactlyOnce,
                                                                   commitInterval: .milliseconds(50),
                                                                   threadFailureResponse: response, log: { lines.append($0) }))
    }

    @Test("a replaced thread's records are processed again by the new thread, exactly once")
    func replaceThread() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(400)
        let failure = OneFailure(failAt: 150)
        let lines = LineLog()
        let app = try application(fixture, failure, response: .replaceThread, lines: lines)
        try app.start()
        defer { app.close() }
        #expect(app.waitUntilIdle(timeout: .seconds(120)), "state \(app.state), failure \(String(describing: app.failure))")
        #expect(app.replacedThreadCount == 1)
        #expect(app.failure == nil)
        #expect(app.state == .running)
        #expect(lines.all.contains { $0.contains("injected failure at record 150") && $0.contains("starting a new thread") }, "\(lines.all)")
        // Every line comes out exactly once, upper-cased, under read_committed.
        let output = try fixture.readCommitted("upper").flatMap { $0 }.map { String(decoding: $0.value ?? [], as: UTF8.self) }
        #expect(output.sorted() == fixture.lines.map { $0.uppercased() }.sorted())
    }

    @Test("by default a failed thread stops the others, which commit, and the application stays in error")
    func shutDownClient() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(400)
        let failure = OneFailure(failAt: 150)
        let app = try application(fixture, failure, response: .shutDownClient, lines: LineLog())
        try app.start()
        defer { app.close() }
        let deadline = ContinuousClock.now + .seconds(60)
        while app.state != .error && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(app.state == .error)
        #expect(app.failure?.message.contains("injected failure at record 150") == true)
        #expect(app.replacedThreadCount == 0)
        // Every thread stops by itself, so close returns at once.
        let start = ContinuousClock.now
        #expect(app.close(timeout: .seconds(30)))
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(app.state == .notRunning)
        // What the threads committed before stopping holds each input line at most once (the
        // survivor may have taken over the failed thread's partitions before it stopped).
        let output = try fixture.readCommitted("upper").flatMap { $0 }.map { String(decoding: $0.value ?? [], as: UTF8.self) }
        var left: [String: Int] = [:]
        for line in fixture.lines { left[line.uppercased(), default: 0] += 1 }
        for line in output { left[line, default: 0] -= 1 }
        #expect(left.values.allSatisfy { $0 >= 0 }, "a line came out more often than it went in")
    }
}
