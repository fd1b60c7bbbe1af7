import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Testing

/// Kills a real worker process (EddyTestChild streams-wordcount, exactly-once, a commit
/// interval long enough that kills land inside open transactions) with SIGKILL at random
/// moments, adding input between runs; then lets a last worker finish. From the outputs alone,
/// read with read_committed: every word's counts are exactly 1, 2, …, n (nothing lost, nothing
/// duplicated). EDDY_LONG_TESTS=1 runs more kills over more input.
@Suite("Processing guarantees under SIGKILL", .serialized)
struct ExactlyOnceKillTests {
    static var isLong: Bool { ProcessInfo.processInfo.environment["EDDY_LONG_TESTS"] == "1" }

    /// The EddyTestChild executable next to the test bundle.
    static func childExecutable() throws -> String {
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        var directory = argument0.deletingLastPathComponent()
        for _ in 0..<4 {
            let path = directory.path + "/EddyTestChild"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
            directory = directory.deletingLastPathComponent()
        }
        Issue.record("EddyTestChild not found near \(argument0.path); build it with `swift build --build-tests`")
        throw EddyError(.invalidState, "EddyTestChild is missing")
    }

    /// Collects a pipe's output on a background thread; `text` may be read at any time.
    final class Collector: @unchecked Sendable {
        // @unchecked: `data` is only touched under `lock`.
        private let lock = NSLock()
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.withLock { data.append(chunk) }
                }
                done.signal()
            }
        }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
        func wait() -> String {
            done.wait()
            return text
        }
    }

    /// Runs a worker; with `killAfterMicroseconds`, kills it that long after it has started
    /// its threads (so the kill lands while it restores, processes or commits).
    static func runChild(_ child: String, _ fixture: RuntimeFixture, threads: Int, killAfterMicroseconds: UInt32?,
                         guarantee: ProcessingGuarantee = .exactlyOnce) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: child)
        var arguments = ["streams-wordcount", fixture.logDirectory, fixture.stateDirectory, String(threads), "200"]
        arguments.append(killAfterMicroseconds == nil ? "until-idle" : "forever")
        arguments.append(guarantee.rawValue)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let collector = Collector(output.fileHandleForReading)
        if let delay = killAfterMicroseconds {
            let deadline = Date().addingTimeInterval(20)
            while !collector.text.contains("started") && process.isRunning && Date() < deadline { usleep(2_000) }
            usleep(delay)
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        try? output.fileHandleForWriting.close()
        return collector.wait()
    }

    @Test("word count stays exact through SIGKILLs of a worker with one and with two stream threads", arguments: [1, 2])
    func killedWorkersLoseAndDuplicateNothing(threads: Int) throws {
        let child = try Self.childExecutable()
        let fixture = try RuntimeFixture()
        var random = SeededGenerator(seed: fixture.seed ^ UInt64(threads))
        let kills = Self.isLong ? 30 : 6
        try fixture.produceLines(Self.isLong ? 100_000 : 15_000)
        try fixture.closeLog()
        var started = 0
        for round in 0..<kills {
            let output = try Self.runChild(child, fixture, threads: threads,
                                           killAfterMicroseconds: UInt32.random(in: 5_000...300_000, using: &random))
            if output.contains("started") { started += 1 }
            #expect(!output.contains("error"), "seed \(fixture.seed) round \(round): \(output)")
            if round % 2 == 1 {
                try fixture.reopenLog()
                try fixture.produceLines(Self.isLong ? 10_000 : 3_000)
                try fixture.closeLog()
            }
        }
        let final = try Self.runChild(child, fixture, threads: threads, killAfterMicroseconds: nil)
        #expect(final.contains("idle"), "seed \(fixture.seed): the last worker did not finish: \(final)")
        #expect(started == kills, "a worker was killed before it started: it stopped on its own?")
        try fixture.reopenLog()
        let sequences = try fixture.outputSequences()
        let reference = fixture.referenceCounts
        var duplicates = 0, losses = 0
        for (word, total) in reference {
            let seen = sequences[word] ?? []
            duplicates += max(0, seen.count - Int(total))
            losses += max(0, Int(total) - seen.count)
            #expect(seen == Array(1...total), "seed \(fixture.seed): word \(word)")
        }
        // Records of transactions the kills left open (aborted at the next start) show how many
        // kills landed inside a transaction.
        let all = try fixture.readCommitted("word-counts", isolation: .readUncommitted).reduce(0) { $0 + $1.count }
        let committed = sequences.values.reduce(0) { $0 + $1.count }
        let repartition = "wc-words-repartition"
        let abortedRepartition = try fixture.readCommitted(repartition, isolation: .readUncommitted).reduce(0) { $0 + $1.count }
            - fixture.readCommitted(repartition).reduce(0) { $0 + $1.count }
        print("SIGKILL exactly-once, \(threads) thread(s), seed \(fixture.seed): \(kills) kills, \(fixture.lines.count) lines, \(committed) committed outputs, \(all - committed) aborted outputs, \(abortedRepartition) aborted repartition records, \(duplicates) duplicates, \(losses) losses")
    }

    @Test("at-least-once through SIGKILLs loses nothing; duplicates are counted and reported")
    func atLeastOnceLosesNothing() throws {
        let child = try Self.childExecutable()
        let fixture = try RuntimeFixture()
        var random = SeededGenerator(seed: fixture.seed)
        let kills = Self.isLong ? 30 : 4
        try fixture.produceLines(Self.isLong ? 100_000 : 10_000)
        try fixture.closeLog()
        for round in 0..<kills {
            let output = try Self.runChild(child, fixture, threads: 2,
                                           killAfterMicroseconds: UInt32.random(in: 5_000...300_000, using: &random),
                                           guarantee: .atLeastOnce)
            #expect(!output.contains("error"), "seed \(fixture.seed) round \(round): \(output)")
        }
        let final = try Self.runChild(child, fixture, threads: 2, killAfterMicroseconds: nil, guarantee: .atLeastOnce)
        #expect(final.contains("idle"), "seed \(fixture.seed): the last worker did not finish: \(final)")
        try fixture.reopenLog()
        let sequences = try fixture.outputSequences()
        var duplicates: Int64 = 0
        for (word, total) in fixture.referenceCounts {
            let last = sequences[word]?.last ?? 0
            #expect(last >= total, "seed \(fixture.seed): word \(word) lost counts: \(last) < \(total)")
            duplicates += max(0, last - total)
        }
        print("SIGKILL at-least-once, seed \(fixture.seed): \(kills) kills, \(fixture.lines.count) lines, 0 losses, \(duplicates) duplicate counts")
    }
}
