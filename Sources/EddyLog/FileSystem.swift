import EddyCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fault-injection seam for files. The storage engine touches files only through this
/// protocol, so the same code runs over POSIX files (``POSIXFileSystem``) and over memory
/// (``InMemoryFileSystem``, the log's in-memory mode and the tests' crash/torn-write simulator).
///
/// Paths are absolute or relative strings with `/` separators. Every failure is an
/// ``EddyError`` (`.io` naming the call, the path and errno). Implementations are thread-safe;
/// a ``LogFile`` handle is used by one owner at a time (the partition's lock).
protocol FileSystem: Sendable {
    /// Opens `path` for reading and writing, creating an empty file if `create` and it is absent.
    func open(_ path: String, create: Bool) throws -> any LogFile
    /// Whether a file or directory exists at `path`.
    func exists(_ path: String) -> Bool
    /// Creates `path` and its missing parents (`mkdir -p`).
    func createDirectory(_ path: String) throws
    /// Names (not paths) of the entries of directory `path`, unsorted.
    func contentsOfDirectory(_ path: String) throws -> [String]
    /// Removes a file (`unlink`).
    func removeFile(_ path: String) throws
    /// Removes an empty directory (`rmdir`).
    func removeDirectory(_ path: String) throws
    /// Atomically replaces `destination` with `source` (`rename`). Durable only after
    /// ``syncDirectory(_:)`` of the directory.
    func rename(_ source: String, to destination: String) throws
    /// Makes the directory's entries (creations, renames, removals) durable (`fsync` of the directory).
    func syncDirectory(_ path: String) throws
}

/// An open file. Positions are byte offsets; reads and writes do not move a file pointer.
protocol LogFile: AnyObject {
    /// The path it was opened with (for error messages).
    var path: String { get }
    /// Current size in bytes (`fstat`).
    func size() throws -> Int64
    /// Reads up to `buffer.count` bytes at `position` (`pread`, repeated until full or end of
    /// file). Returns the number of bytes read: smaller than asked only at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int
    /// Writes all of `bytes` at `position` (`pwrite`, repeated until complete).
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws
    /// Cuts or extends the file to `size` bytes (`ftruncate`).
    func truncate(to size: Int64) throws
    /// Makes the contents durable (`fsync`).
    func sync() throws
    /// Closes the handle. Further use is a programming error.
    func close() throws
}

extension LogFile {
    /// Reads exactly `count` bytes at `position` into a new array, or throws `.corrupt` when the
    /// file is shorter.
    func readBytes(count: Int, at position: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try bytes.withUnsafeMutableBytes { try read(into: $0, at: position) }
        if got != count {
            throw EddyError(.corrupt, "\(path): needed \(count) bytes at byte \(position), the file ends after \(got)")
        }
        return bytes
    }

    /// The whole file.
    func readAll() throws -> [UInt8] {
        let total = Int(try size())
        var bytes = [UInt8](repeating: 0, count: total)
        let got = try bytes.withUnsafeMutableBytes { try read(into: $0, at: 0) }
        if got < total { bytes.removeLast(total - got) }
        return bytes
    }

    /// Writes an array at `position`.
    func write(_ bytes: [UInt8], at position: Int64) throws {
        try bytes.withUnsafeBytes { try write($0, at: position) }
    }
}

extension FileSystem {
    /// Writes a small metadata file atomically and durably: `path.tmp` is written and fsynced,
    /// renamed over `path`, and the directory is fsynced. A crash leaves either the old or the
    /// new contents, never a mix.
    func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".tmp"
        let file = try open(temporary, create: true)
        do {
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            try file.sync()
            try file.close()
        } catch {
            try? file.close()
            throw error
        }
        try rename(temporary, to: path)
        try syncDirectory(directoryName(of: path))
    }

    /// Removes a directory and the files in it (one level: partition directories hold no subdirectories).
    func removeDirectoryAndFiles(_ path: String) throws {
        guard exists(path) else { return }
        for name in try contentsOfDirectory(path) {
            try removeFile(path + "/" + name)
        }
        try removeDirectory(path)
    }
}

/// The directory part of `path` (`.` when there is none).
func directoryName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

// MARK: - POSIX

/// Files on disk through POSIX calls: `open`, `pread`, `pwrite`, `ftruncate`, `fsync`,
/// `rename`, and `fsync` of the directory for durable renames.
struct POSIXFileSystem: FileSystem {
    func open(_ path: String, create: Bool) throws -> any LogFile {
        var flags = O_RDWR | O_CLOEXEC
        if create { flags |= O_CREAT }
        let fd = path.withCString { Glibc.open($0, flags, 0o644) }
        if fd < 0 { throw EddyError.system("open", path: path, errno: errno) }
        return POSIXFile(descriptor: fd, path: path)
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    func createDirectory(_ path: String) throws {
        if exists(path) { return }
        let parent = directoryName(of: path)
        if parent != path && parent != "." && parent != "/" && !exists(parent) {
            try createDirectory(parent)
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw EddyError.system("mkdir", path: path, errno: errno)
        }
    }

    func contentsOfDirectory(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else { throw EddyError.system("opendir", path: path, errno: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    func removeFile(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw EddyError.system("unlink", path: path, errno: errno) }
    }

    func removeDirectory(_ path: String) throws {
        if rmdir(path) != 0 && errno != ENOENT { throw EddyError.system("rmdir", path: path, errno: errno) }
    }

    func rename(_ source: String, to destination: String) throws {
        if Glibc.rename(source, destination) != 0 {
            throw EddyError.system("rename", path: "\(source) -> \(destination)", errno: errno)
        }
    }

    func syncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw EddyError.system("open", path: path, errno: errno) }
        defer { Glibc.close(fd) }
        if fsync(fd) != 0 { throw EddyError.system("fsync", path: path, errno: errno) }
    }
}

/// One open POSIX file descriptor.
final class POSIXFile: LogFile {
    let path: String
    private var descriptor: Int32

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    func size() throws -> Int64 {
        var info = stat()
        if fstat(descriptor, &info) != 0 { throw EddyError.system("fstat", path: path, errno: errno) }
        return Int64(info.st_size)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw EddyError.system("pread", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw EddyError.system("pwrite", path: path, errno: errno)
            }
            done += n
        }
    }

    func truncate(to size: Int64) throws {
        if ftruncate(descriptor, off_t(size)) != 0 { throw EddyError.system("ftruncate", path: path, errno: errno) }
    }

    func sync() throws {
        if fsync(descriptor) != 0 { throw EddyError.system("fsync", path: path, errno: errno) }
    }

    func close() throws {
        guard descriptor >= 0 else { return }
        let fd = descriptor
        descriptor = -1
        if Glibc.close(fd) != 0 { throw EddyError.system("close", path: path, errno: errno) }
    }
}

// MARK: - In memory

/// Files in memory: the log's in-memory mode, and a simulator of disk faults for tests.
///
/// It remembers what was made durable: a file's contents at its last ``LogFile/sync()`` and a
/// directory's entries at its last ``FileSystem/syncDirectory(_:)``. ``crash()`` throws away
/// everything else, as a power loss would. Faults are injected with ``inject(_:)``: an `EIO`
/// on the next matching call, or a torn write that stores only a prefix and then fails.
/// Directories are created durable at once. Thread-safe (one lock for the whole file system).
final class InMemoryFileSystem: FileSystem, @unchecked Sendable {
    // @unchecked: all mutable state is reached only under `lock`.

    /// A file's bytes: what is visible now and what survives a crash.
    final class Node {
        var data: [UInt8] = []
        var synced: [UInt8] = []
    }

    /// Calls a fault can hit.
    enum Operation: Sendable { case open, read, write, truncate, sync, rename, syncDirectory }

    /// A fault to inject: the next `count` calls of `operation` on a path containing `pathContains` fail.
    struct Fault: Sendable {
        var operation: Operation
        var pathContains: String
        /// For writes: store only this many bytes of the write, then fail (a torn write). `nil`: store nothing.
        var tornPrefix: Int?
        var errno: Int32
        var count: Int
        init(_ operation: Operation, pathContains: String = "", tornPrefix: Int? = nil, errno: Int32 = EIO, count: Int = 1) {
            self.operation = operation
            self.pathContains = pathContains
            self.tornPrefix = tornPrefix
            self.errno = errno
            self.count = count
        }
    }

    let lock = StorageMutex()
    /// Whether `sync` keeps a durable copy for ``crash()`` (tests). Off in the log's in-memory
    /// mode, where an fsync would otherwise copy the whole file.
    let simulatesCrashes: Bool
    private var files: [String: Node] = [:]
    private var durableFiles: [String: Node] = [:]
    private var directories: Set<String> = []
    private var faults: [Fault] = []

    init(simulatesCrashes: Bool = false) { self.simulatesCrashes = simulatesCrashes }

    /// Arms a fault.
    func inject(_ fault: Fault) { lock.withLock { faults.append(fault) } }

    /// Simulates a power loss: unsynced data and unsynced directory entries are lost.
    /// Open handles keep working on the surviving nodes (callers should reopen).
    func crash() {
        precondition(simulatesCrashes, "crash() needs InMemoryFileSystem(simulatesCrashes: true)")
        lock.withLock {
            files = durableFiles
            for node in files.values { node.data = node.synced }
        }
    }

    /// Paths of all files, sorted (for tests).
    func allFiles() -> [String] { lock.withLock { files.keys.sorted() } }

    /// A copy of a file's current bytes (for tests).
    func contents(of path: String) -> [UInt8]? { lock.withLock { files[normalize(path)]?.data } }

    /// Replaces a file's bytes, durably (for tests that damage files between runs).
    func setContents(_ bytes: [UInt8], of path: String) {
        lock.withLock {
            let key = normalize(path)
            let node = files[key] ?? Node()
            node.data = bytes
            node.synced = bytes
            files[key] = node
            durableFiles[key] = node
        }
    }

    /// Throws the armed fault for `operation` on `path`, if any. Must be called under `lock`.
    func takeFault(_ operation: Operation, _ path: String) -> Fault? {
        guard let index = faults.firstIndex(where: {
            $0.operation == operation && ($0.pathContains.isEmpty || path.contains($0.pathContains))
        }) else { return nil }
        let fault = faults[index]
        faults[index].count -= 1
        if faults[index].count <= 0 { faults.remove(at: index) }
        return fault
    }

    private func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            parts.append(part)
        }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }

    func open(_ path: String, create: Bool) throws -> any LogFile {
        try lock.withLock {
            let key = normalize(path)
            if let fault = takeFault(.open, key) { throw EddyError.system("open", path: path, errno: fault.errno) }
            if let node = files[key] { return InMemoryFile(system: self, node: node, path: path) }
            guard create else { throw EddyError.system("open", path: path, errno: ENOENT) }
            guard directories.contains(normalize(directoryName(of: key))) || !key.contains("/") else {
                throw EddyError.system("open", path: path, errno: ENOENT)
            }
            let node = Node()
            files[key] = node
            return InMemoryFile(system: self, node: node, path: path)
        }
    }

    func exists(_ path: String) -> Bool {
        lock.withLock {
            let key = normalize(path)
            return files[key] != nil || directories.contains(key)
        }
    }

    func createDirectory(_ path: String) throws {
        lock.withLock {
            var key = normalize(path)
            while !key.isEmpty && key != "/" && key != "." {
                directories.insert(key)
                key = normalize(directoryName(of: key))
            }
        }
    }

    func contentsOfDirectory(_ path: String) throws -> [String] {
        try lock.withLock {
            let key = normalize(path)
            guard directories.contains(key) else { throw EddyError.system("opendir", path: path, errno: ENOENT) }
            let prefix = key + "/"
            var names: Set<String> = []
            for name in files.keys where name.hasPrefix(prefix) {
                let rest = name.dropFirst(prefix.count)
                if !rest.contains("/") { names.insert(String(rest)) }
            }
            for name in directories where name.hasPrefix(prefix) {
                let rest = name.dropFirst(prefix.count)
                if !rest.contains("/") { names.insert(String(rest)) }
            }
            return Array(names)
        }
    }

    func removeFile(_ path: String) throws {
        lock.withLock { _ = files.removeValue(forKey: normalize(path)) }
    }

    func removeDirectory(_ path: String) throws {
        try lock.withLock {
            let key = normalize(path)
            let prefix = key + "/"
            if files.keys.contains(where: { $0.hasPrefix(prefix) }) {
                throw EddyError.system("rmdir", path: path, errno: ENOTEMPTY)
            }
            directories.remove(key)
            for name in durableFiles.keys where name.hasPrefix(prefix) { durableFiles.removeValue(forKey: name) }
        }
    }

    func rename(_ source: String, to destination: String) throws {
        try lock.withLock {
            let from = normalize(source), to = normalize(destination)
            if let fault = takeFault(.rename, from) {
                throw EddyError.system("rename", path: "\(source) -> \(destination)", errno: fault.errno)
            }
            guard let node = files.removeValue(forKey: from) else {
                throw EddyError.system("rename", path: "\(source) -> \(destination)", errno: ENOENT)
            }
            files[to] = node
        }
    }

    func syncDirectory(_ path: String) throws {
        try lock.withLock {
            let key = normalize(path)
            if let fault = takeFault(.syncDirectory, key) { throw EddyError.system("fsync", path: path, errno: fault.errno) }
            let prefix = key + "/"
            func inDirectory(_ name: String) -> Bool {
                name.hasPrefix(prefix) && !name.dropFirst(prefix.count).contains("/")
            }
            for name in durableFiles.keys where inDirectory(name) && files[name] == nil {
                durableFiles.removeValue(forKey: name)
            }
            for (name, node) in files where inDirectory(name) { durableFiles[name] = node }
        }
    }
}

/// A handle on an ``InMemoryFileSystem`` node.
final class InMemoryFile: LogFile {
    let path: String
    private let system: InMemoryFileSystem
    private let node: InMemoryFileSystem.Node

    init(system: InMemoryFileSystem, node: InMemoryFileSystem.Node, path: String) {
        self.system = system
        self.node = node
        self.path = path
    }

    func size() throws -> Int64 { system.lock.withLock { Int64(node.data.count) } }

    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
        try system.lock.withLock {
            if let fault = system.takeFault(.read, path) { throw EddyError.system("pread", path: path, errno: fault.errno) }
            let start = Int(position)
            guard start < node.data.count else { return 0 }
            let count = min(buffer.count, node.data.count - start)
            node.data.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: count)
            }
            return count
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        try system.lock.withLock {
            var stored = bytes
            let fault = system.takeFault(.write, path)
            if let fault {
                guard let prefix = fault.tornPrefix else { throw EddyError.system("pwrite", path: path, errno: fault.errno) }
                stored = UnsafeRawBufferPointer(rebasing: bytes[0..<min(prefix, bytes.count)])
            }
            let start = Int(position)
            let end = start + stored.count
            if start == node.data.count {
                // The common case, an append: one copy.
                node.data.append(contentsOf: stored)
            } else if stored.count > 0 {
                if node.data.count < end { node.data.append(contentsOf: repeatElement(0, count: end - node.data.count)) }
                node.data.withUnsafeMutableBytes { target in
                    (target.baseAddress! + start).copyMemory(from: stored.baseAddress!, byteCount: stored.count)
                }
            }
            if let fault { throw EddyError.system("pwrite", path: path, errno: fault.errno) }
        }
    }

    func truncate(to size: Int64) throws {
        try system.lock.withLock {
            if let fault = system.takeFault(.truncate, path) { throw EddyError.system("ftruncate", path: path, errno: fault.errno) }
            let target = Int(size)
            if target < node.data.count {
                node.data.removeLast(node.data.count - target)
            } else if target > node.data.count {
                node.data.append(contentsOf: repeatElement(0, count: target - node.data.count))
            }
        }
    }

    func sync() throws {
        try system.lock.withLock {
            if let fault = system.takeFault(.sync, path) { throw EddyError.system("fsync", path: path, errno: fault.errno) }
            if system.simulatesCrashes { node.synced = node.data }
        }
    }

    func close() throws {}
}
