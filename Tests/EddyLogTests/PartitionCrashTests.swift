import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// Kills a real child process (EddyTestChild partition-append, fsync=always) with SIGKILL at
/// random moments; after each batch of kills the log is reopened: every acknowledged record is
/// present exactly once, at the offset it was acknowledged with, and offsets are dense.
@Suite struct PartitionCrashTests {
    typealias F = StorageFixture

    /// The EddyTestChild executable next to the test bundle, or a clear failure.
    static func childExecutable() throws -> String {
        var candidates: [String] = []
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        candidates.append(argument0.deletingLastPathComponent().path)
        let bundle = Bundle.main.bundleURL.standardizedFileURL
        candidates.append(bundle.path)
        candidates.append(bundle.deletingLastPathComponent().path)
        // Inside an .xctest bundle directory (macOS layout) the build directory is further up.
        candidates.append(argument0.deletingLastPathComponent().deletingLastPathComponent().path)
        candidates.append(argument0.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path)
        for directory in candidates {
            let path = directory + "/EddyTestChild"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        Issue.record("EddyTestChild not found next to the test bundle (looked in \(candidates)); build it with `swift build --build-tests`")
        throw EddyError(.invalidState, "EddyTestChild is missing")
    }

    /// Collects a pipe's output on a background thread.
    final class Collector: @unchecked Sendable {
        // @unchecked: `data` is written by the reading thread before `done` is signalled and read after.
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                data = handle.readDataToEndOfFile()
                done.signal()
            }
        }
        func wait() -> Data {
            done.wait()
            return data
        }
    }

    @Test func everyAcknowledgedAppendSurvivesSIGKILLExactlyOnce() throws {
        let child = try Self.childExecutable()
        let seed = StorageRandom.seed("partition crash")
        var random = StorageRandom(seed: seed)
        let root = F.temporaryDirectory("eddy-crash")
        defer { F.removeTemporary(root) }
        let directory = root + "/crash-0"
        let rounds = storageRounds(100, long: 400)
        var acknowledged: [Offset: String] = [:]
        var acknowledgedRounds = 0
        for round in 0..<rounds {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: child)
            process.arguments = ["partition-append", directory, String(round)]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let collector = Collector(output.fileHandleForReading)
            usleep(UInt32.random(in: 20_000...500_000, using: &random))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? output.fileHandleForWriting.close()
            let text = String(decoding: collector.wait(), as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if !text.hasSuffix("\n") { lines.removeLast() } // a line cut by the kill is not an acknowledgement
            var acks = 0
            for line in lines where line.hasPrefix("ack ") {
                let fields = line.split(separator: " ")
                guard fields.count == 4, let first = Offset(fields[1]), let last = Offset(fields[2]), let sequence = Int(fields[3]) else {
                    Issue.record("seed \(seed): bad child line \(line)")
                    continue
                }
                for offset in first...last {
                    #expect(acknowledged[offset] == nil, "seed \(seed): offset \(offset) acknowledged twice")
                    acknowledged[offset] = "r\(round)-s\(sequence)-i\(offset - first)"
                }
                acks += 1
            }
            if acks > 0 { acknowledgedRounds += 1 }
            if round % 25 == 24 || round == rounds - 1 {
                try Self.verify(directory: directory, acknowledged: acknowledged, seed: seed)
            }
        }
        print("partition crash: \(rounds) kills, \(acknowledged.count) acknowledged records in \(acknowledgedRounds) rounds")
        #expect(acknowledgedRounds > rounds / 4, "the child rarely got to append: is it too slow to start?")
    }

    static func verify(directory: String, acknowledged: [Offset: String], seed: UInt64) throws {
        var configuration = TopicConfiguration()
        configuration.fsync = .always
        configuration.segmentBytes = 16 * 1024
        configuration.indexIntervalBytes = 512
        let log = try F.open(.real, configuration, directory: directory)
        defer { try? log.close() }
        let records = try F.readAll(log, maxBytes: 64 * 1024)
        #expect(records.map(\.offset) == Array(0..<log.endOffset), "seed \(seed): offsets are not dense")
        var seen = Set<String>()
        for record in records {
            let value = String(decoding: record.value ?? [], as: UTF8.self)
            #expect(seen.insert(value).inserted, "seed \(seed): record \(value) appears twice")
            if let expected = acknowledged[record.offset] {
                #expect(value == expected, "seed \(seed): offset \(record.offset) holds \(value), acknowledged \(expected)")
            }
        }
        let maximumAcknowledged = acknowledged.keys.max() ?? -1
        #expect(log.endOffset > maximumAcknowledged, "seed \(seed): acknowledged offset \(maximumAcknowledged) is missing (end \(log.endOffset))")
    }
}
