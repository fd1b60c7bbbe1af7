import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Testing

/// Emit-final windowed aggregation (``EmitStrategy/onWindowClose``) across stops and restarts
/// of a ``StreamsApplication``: the close time up to which results were sent is committed with
/// the input offsets, so every window's final result is sent exactly once, also when the
/// state directory is lost and the store is restored from its changelog.
@Suite("Emit-final across restarts", .serialized)
struct EmitFinalRestartTests {
    /// Input in three chunks, each run to idle by a new instance of the application.
    static let chunks: [[(Int, String, Timestamp)]] = [
        [(0, "a", 1_000), (0, "b", 2_000), (0, "a", 11_000), (1, "c", 3_000)],
        [(0, "a", 12_000), (0, "b", 25_000), (1, "c", 4_000), (1, "c", 30_000)],
        [(0, "a", 26_000), (0, "a", 41_000), (1, "d", 31_000), (1, "c", 45_000)],
    ]
    /// Each window once, with its final count (the windows of a@41000 and c@45000 stay open).
    static let expected = ["a@0": [1], "b@0": [1], "a@10000": [2], "c@0": [2], "b@20000": [1], "a@20000": [1],
                           "c@30000": [1], "d@30000": [1]]

    @Test("each final result is sent once across graceful restarts, as in an uninterrupted run",
          arguments: [ProcessingGuarantee.exactlyOnce, .atLeastOnce])
    func restarts(_ guarantee: ProcessingGuarantee) throws {
        let fixture = try StreamTimeFixture(emitFinal: true)
        defer { fixture.remove() }
        var sent = 0
        for chunk in Self.chunks {
            try fixture.produce(chunk)
            sent += try fixture.runToIdle("restarted", guarantee).emittedFinalResults
            // A run with no new input sends nothing again.
            #expect(try fixture.runToIdle("restarted", guarantee).emittedFinalResults == 0)
        }
        #expect(sent == 8)
        #expect(try fixture.output("restarted") == Self.expected)
        #expect(try fixture.runToIdle("uninterrupted", guarantee).emittedFinalResults == 8)
        #expect(try fixture.output("uninterrupted") == Self.expected)
    }

    @Test("a worker whose state directory is lost restores the open windows and sends each final result once")
    func lostStateDirectory() throws {
        let fixture = try StreamTimeFixture(emitFinal: true)
        defer { fixture.remove() }
        for chunk in Self.chunks {
            try fixture.produce(chunk)
            _ = try fixture.runToIdle("wiped", .exactlyOnce)
            try FileManager.default.removeItem(atPath: fixture.root + "/state/wiped")
        }
        // a@1000 and a@11000's counts come from the restored store: a@10000 is 2, not 1.
        #expect(try fixture.output("wiped") == Self.expected)
    }
}
