import EddyCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock on a data directory: `flock(LOCK_EX | LOCK_NB)` on `DIRECTORY/.lock`.
///
/// A second process that opens the same directory gets ``EddyError/Code/locked`` naming the
/// directory and the pid that holds it, and touches nothing else. Within one process, opening
/// the same directory a second time is refused the same way (the message says so): two
/// `EmbeddedLog` objects over one directory would each believe they own its files.
///
/// The kernel releases the lock when the process dies (even by SIGKILL), so a crash never
/// leaves a stale lock behind; the pid written into the file is for the error message only.
final class DirectoryLock: @unchecked Sendable {
    /// Lock file name inside the data directory.
    static let fileName = ".lock"

    let directory: String
    private var descriptor: Int32
    private let key: String

    // Directories locked by this process, by resolved path: a second `flock` from the same
    // process on another descriptor would also fail, but with a misleading "another process".
    private static let heldLock = ClientLock()
    nonisolated(unsafe) private static var held: Set<String> = []

    /// Creates `directory` if needed and locks it. Throws ``EddyError/Code/locked`` if another
    /// process or another `EmbeddedLog` of this process holds it, ``EddyError/Code/io`` if the
    /// directory or the lock file cannot be created.
    init(directory: String) throws {
        self.directory = directory
        try DirectoryLock.makeDirectories(directory)
        let key = DirectoryLock.resolved(directory)
        self.key = key
        let inserted = DirectoryLock.heldLock.withLock { DirectoryLock.held.insert(key).inserted }
        guard inserted else {
            throw EddyError(.locked, "data directory \(directory) is already open in this process; close the other EmbeddedLog first")
        }
        let path = directory + "/" + DirectoryLock.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            let number = errno
            _ = DirectoryLock.heldLock.withLock { DirectoryLock.held.remove(key) }
            throw EddyError.system("open", path: path, errno: number)
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let number = errno
            let holder = DirectoryLock.readHolder(fd)
            close(fd)
            _ = DirectoryLock.heldLock.withLock { DirectoryLock.held.remove(key) }
            if number == EWOULDBLOCK || number == EAGAIN {
                let who = holder.map { "process \($0)" } ?? "another process"
                throw EddyError(.locked, "data directory \(directory) is locked by \(who) (\(path)); only one process may open it at a time")
            }
            throw EddyError.system("flock", path: path, errno: number)
        }
        descriptor = fd
        // Record our pid for the message a second process will see; failure here is harmless.
        _ = ftruncate(fd, 0)
        var text = Array("\(getpid())\n".utf8)
        _ = text.withUnsafeMutableBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { release() }

    /// Releases the lock; idempotent.
    func release() {
        guard descriptor >= 0 else { return }
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
        _ = DirectoryLock.heldLock.withLock { DirectoryLock.held.remove(key) }
    }

    private static func readHolder(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return Int(text.split(whereSeparator: { $0 == "\n" }).first ?? "")
    }

    private static func resolved(_ path: String) -> String {
        guard let pointer = realpath(path, nil) else { return path }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + component
            if mkdir(current, 0o755) != 0 {
                let number = errno
                if number == EEXIST {
                    var info = stat()
                    if stat(current, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
                    throw EddyError(.io, "\(current) exists and is not a directory")
                }
                throw EddyError.system("mkdir", path: current, errno: number)
            }
        }
    }
}
