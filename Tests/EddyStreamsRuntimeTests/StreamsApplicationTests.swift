import EddyCore
import EddyLog
import EddyState
import EddyStreams
import EddyTopologies
import Foundation
import Testing

@Suite("StreamsApplication", .serialized)
struct StreamsApplicationTests {
    /// Each word's output must be exactly 1, 2, …, n: no loss, no duplicate, in order.
    static func expectExact(_ sequences: [String: [Int64]], _ reference: [String: Int64]) {
        #expect(Set(sequences.keys) == Set(reference.keys))
        for (word, total) in reference {
            #expect(sequences[word] == Array(1...total), "word \(word)")
        }
    }

    @Test("the state machine allows only the listed transitions")
    func stateMachine() {
        typealias S = StreamsApplication.State
        #expect(S.created.canTransition(to: .rebalancing))
        #expect(S.rebalancing.canTransition(to: .running))
        #expect(S.running.canTransition(to: .rebalancing))
        #expect(S.running.canTransition(to: .pendingShutdown))
        #expect(S.pendingShutdown.canTransition(to: .notRunning))
        #expect(S.error.canTransition(to: .pendingShutdown))
        #expect(!S.notRunning.canTransition(to: .running))
        #expect(!S.created.canTransition(to: .running))
        #expect(!S.pendingShutdown.canTransition(to: .running))
        #expect(!S.running.canTransition(to: .created))
    }

    @Test("word count with exactly-once and two threads matches the reference, observed through state hooks")
    func wordCountExactlyOnce() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(1_500)
        let app = try fixture.application(threads: 2)
        let seen = StateLog()
        app.addStateListener { old, new in seen.append(old, new) }
        try app.start()
        #expect(app.waitUntilIdle(timeout: .seconds(120)))
        #expect(app.failure == nil)
        app.close()
        #expect(app.state == .notRunning)
        let transitions = seen.all
        #expect(transitions.first?.0 == .created && transitions.first?.1 == .rebalancing)
        #expect(transitions.contains { $0.1 == .running })
        #expect(transitions.last?.0 == .pendingShutdown && transitions.last?.1 == .notRunning)
        for (old, new) in transitions { #expect(old.canTransition(to: new)) }
        Self.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }

    @Test("a restart after close resumes where the commit left off, without duplicates")
    func restartResumes() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(600)
        try fixture.runToIdle()
        try fixture.produceLines(600)
        try fixture.runToIdle(threads: 1)
        Self.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }

    @Test("stores restored from changelogs after the state directory is deleted equal the previous stores")
    func restorationAfterDeletingState() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(800)
        try fixture.runToIdle()
        let before = try fixture.storeContents()
        #expect(!before.isEmpty)
        try FileManager.default.removeItem(atPath: fixture.stateDirectory)
        try fixture.runToIdle()
        #expect(try fixture.storeContents() == before)
        // More input continues from the restored counts.
        try fixture.produceLines(200)
        try fixture.runToIdle()
        Self.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }

    @Test("a corrupted store directory is deleted and its stores restored in full from the changelogs")
    func corruptedStoreRestoresInFull() throws {
        let fixture = try RuntimeFixture()
        try fixture.produceLines(500)
        try fixture.runToIdle()
        let before = try fixture.storeContents()
        // Damage every task's RocksDB manifest pointer.
        for p in 0..<4 {
            let current = "\(fixture.stateDirectory)/wc/1_\(p)/rocksdb/CURRENT"
            try Data("MANIFEST-999999\n".utf8).write(to: URL(fileURLWithPath: current))
        }
        let logged = Lines()
        let app = try fixture.application(log: { logged.append($0) })
        try app.start()
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        app.close()
        #expect(logged.all.filter { $0.contains("restored store counts") }.count == 4, "\(logged.all)")
        #expect(try fixture.storeContents() == before)
        Self.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
    }

    @Test("at-least-once loses nothing and at-most-once commits offsets first")
    func otherGuarantees() throws {
        for guarantee in [ProcessingGuarantee.atLeastOnce, .atMostOnce] {
            let fixture = try RuntimeFixture()
            try fixture.produceLines(500)
            try fixture.runToIdle(guarantee: guarantee)
            // A clean run with no crash has neither losses nor duplicates under any guarantee.
            Self.expectExact(try fixture.outputSequences(), fixture.referenceCounts)
        }
    }
}

/// Transitions seen by a state hook (called from stream threads).
final class StateLog: @unchecked Sendable {
    // @unchecked: `entries` is only touched under `lock`.
    private let lock = NSLock()
    private var entries: [(StreamsApplication.State, StreamsApplication.State)] = []
    func append(_ old: StreamsApplication.State, _ new: StreamsApplication.State) { lock.withLock { entries.append((old, new)) } }
    var all: [(StreamsApplication.State, StreamsApplication.State)] { lock.withLock { entries } }
}
