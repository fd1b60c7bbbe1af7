import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// A child process running `EddyTestChild hold-lock DIR`.
final class LockHolderChild {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    /// The EddyTestChild executable, built next to the test bundle.
    static var executable: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (me as NSString).deletingLastPathComponent
        // The test bundle may sit inside `<name>.xctest/...` on some platforms.
        while directory.hasSuffix(".xctest") || directory.contains(".xctest/") {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory + "/EddyTestChild"
    }

    init(directory: String, mode: String = "hold-lock", arguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: LockHolderChild.executable)
        process.arguments = [mode, directory] + arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    /// The child's first line of output.
    func firstLine() -> String {
        var bytes: [UInt8] = []
        let handle = output.fileHandleForReading
        while true {
            let chunk = handle.readData(ofLength: 1)
            if chunk.isEmpty || chunk.first == UInt8(ascii: "\n") { break }
            bytes.append(chunk.first!)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Everything the child wrote that was not read yet, up to its end (call after it exited).
    func remainingOutput() -> String {
        String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func finish() -> Int32 {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

@Suite struct DirectoryLockTests {
    @Test func aSecondProcessOpeningTheSameDirectoryGetsAClearLockedError() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        let log = try EmbeddedLog(directory: directory)
        try log.admin.createTopic("kept", configuration: TopicConfiguration())
        let child = try LockHolderChild(directory: directory)
        let line = child.firstLine()
        #expect(child.finish() == 3)
        #expect(line.hasPrefix("error locked "), "\(line)")
        #expect(line.contains(directory))
        #expect(line.contains("process \(getpid())"), "\(line)")
        // Nothing was touched.
        #expect(try log.admin.listTopics().contains("kept"))
        try log.close()
    }

    @Test func aLockHeldByAnotherProcessIsRefusedAndFreedWhenItIsKilled() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        let child = try LockHolderChild(directory: directory)
        let line = child.firstLine()
        #expect(line.hasPrefix("opened "), "\(line)")
        do {
            _ = try EmbeddedLog(directory: directory)
            Issue.record("opening a directory locked by another process succeeded")
        } catch let error as EddyError {
            #expect(error.code == .locked)
            #expect(error.message.contains("process \(child.process.processIdentifier)"), "\(error)")
        }
        child.kill()
        // The kernel dropped the lock with the process: no stale lock.
        let log = try EmbeddedLog(directory: directory)
        try log.close()
    }

    @Test func openingTheSameDirectoryTwiceInOneProcessIsRefusedUntilClosed() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        let first = try EmbeddedLog(directory: directory)
        expectEddyError(.locked) { _ = try EmbeddedLog(directory: directory) }
        expectEddyError(.locked) { _ = try EmbeddedLog(directory: directory + "/.") }
        try first.close()
        let second = try EmbeddedLog(directory: directory)
        try second.close()
    }

    @Test func aMissingDataDirectoryIsCreatedWithItsParents() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        let nested = directory + "/a/b/data"
        let log = try EmbeddedLog(directory: nested)
        #expect(FileManager.default.fileExists(atPath: nested + "/" + DirectoryLock.fileName))
        try log.close()
        // A file where the directory should be is a clear error.
        _ = FileManager.default.createFile(atPath: directory + "/file", contents: Data())
        expectEddyError(.io) { _ = try EmbeddedLog(directory: directory + "/file") }
    }
}
