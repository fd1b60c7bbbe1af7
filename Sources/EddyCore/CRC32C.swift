import CCRC32C

/// CRC32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
///
/// Uses the CPU's crc32 instruction where available (SSE4.2 on x86_64, CRC on arm64) and a
/// slicing-by-8 table elsewhere. Pure function, callable from any thread.
public enum CRC32C {
    /// The checksum of `bytes`.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }

    /// The checksum of `bytes`.
    public static func checksum<C: ContiguousBytes>(_ bytes: C) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    /// Continues `crc` over `bytes` (start with 0).
    @inlinable
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return eddy_crc32c_update(crc, base, bytes.count)
    }

    /// Whether the hardware instruction is in use on this machine.
    public static var usesHardware: Bool { eddy_crc32c_hardware() != 0 }

    /// The table-driven path, for tests that compare it with the hardware one.
    public static func softwareChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        return eddy_crc32c_update_software(0, base, bytes.count)
    }
}

/// Bytes that can be viewed contiguously (`[UInt8]`, `ArraySlice<UInt8>`, `UnsafeRawBufferPointer`).
public protocol ContiguousBytes {
    /// Calls `body` with the bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension UnsafeRawBufferPointer: ContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(self) }
}
