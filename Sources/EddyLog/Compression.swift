import CLZ4
import CZstd
import EddyCore

/// Compression of the records section of a batch, as Kafka does it: LZ4 in the LZ4 frame
/// format, zstd in the zstd frame format. Decompression is bounded: output larger than
/// `maximumBytes` is refused with ``EddyError/Code/recordTooLarge`` (a zip bomb cannot
/// allocate more than the topic's record size limit).
enum Compression {
    /// Kafka's attribute codes (bits 0–2 of a batch's attributes).
    static func attributeCode(_ codec: CompressionCodec) -> Int16 {
        switch codec {
        case .none: 0
        case .lz4: 3
        case .zstd: 4
        }
    }

    static func codec(attributeCode code: Int16) throws -> CompressionCodec {
        switch code {
        case 0: return .none
        case 3: return .lz4
        case 4: return .zstd
        case 1: throw EddyError(.unsupported, "gzip-compressed batches are not supported; use lz4 or zstd")
        case 2: throw EddyError(.unsupported, "snappy-compressed batches are not supported; use lz4 or zstd")
        default: throw EddyError(.corrupt, "unknown compression code \(code) in batch attributes")
        }
    }

    /// Compresses `input` with `codec` (`none` returns it unchanged).
    static func compress(_ input: UnsafeRawBufferPointer, codec: CompressionCodec) throws -> [UInt8] {
        switch codec {
        case .none:
            return Array(input)
        case .zstd:
            let bound = ZSTD_compressBound(input.count)
            var output = [UInt8](repeating: 0, count: bound)
            let written = output.withUnsafeMutableBytes { out in
                ZSTD_compress(out.baseAddress, bound, input.baseAddress, input.count, 3)
            }
            if ZSTD_isError(written) != 0 {
                throw EddyError(.invalidState, "ZSTD_compress failed: \(String(cString: ZSTD_getErrorName(written)))")
            }
            output.removeSubrange(written...)
            return output
        case .lz4:
            let bound = LZ4F_compressFrameBound(input.count, nil)
            var output = [UInt8](repeating: 0, count: bound)
            let written = output.withUnsafeMutableBytes { out in
                LZ4F_compressFrame(out.baseAddress, bound, input.baseAddress, input.count, nil)
            }
            if LZ4F_isError(written) != 0 {
                throw EddyError(.invalidState, "LZ4F_compressFrame failed: \(String(cString: LZ4F_getErrorName(written)))")
            }
            output.removeSubrange(written...)
            return output
        }
    }

    /// Decompresses `input`, refusing more than `maximumBytes` of output.
    static func decompress(_ input: UnsafeRawBufferPointer, codec: CompressionCodec, maximumBytes: Int) throws -> [UInt8] {
        switch codec {
        case .none:
            return Array(input)
        case .zstd:
            return try decompressZstd(input, maximumBytes: maximumBytes)
        case .lz4:
            return try decompressLZ4(input, maximumBytes: maximumBytes)
        }
    }

    private static func tooLarge(_ maximumBytes: Int) -> EddyError {
        EddyError(.recordTooLarge, "decompressed batch exceeds the record size limit of \(maximumBytes) bytes")
    }

    private static func decompressZstd(_ input: UnsafeRawBufferPointer, maximumBytes: Int) throws -> [UInt8] {
        guard let stream = ZSTD_createDStream() else { throw EddyError(.invalidState, "ZSTD_createDStream failed") }
        defer { ZSTD_freeDStream(stream) }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: min(max(input.count * 4, 4096), maximumBytes + 1))
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while true {
            let (result, produced) = chunk.withUnsafeMutableBytes { out -> (Int, Int) in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                let r = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                return (r, outBuffer.pos)
            }
            if ZSTD_isError(result) != 0 {
                throw EddyError(.corrupt, "zstd data does not decompress: \(String(cString: ZSTD_getErrorName(result)))")
            }
            output.append(contentsOf: chunk[0..<produced])
            if output.count > maximumBytes { throw tooLarge(maximumBytes) }
            if result == 0 && inBuffer.pos == inBuffer.size { return output }
            if produced == 0 && inBuffer.pos == inBuffer.size {
                throw EddyError(.corrupt, "zstd frame is truncated")
            }
        }
    }

    private static func decompressLZ4(_ input: UnsafeRawBufferPointer, maximumBytes: Int) throws -> [UInt8] {
        var context: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        if LZ4F_isError(created) != 0 { throw EddyError(.invalidState, "LZ4F_createDecompressionContext failed") }
        defer { LZ4F_freeDecompressionContext(context) }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: min(max(input.count * 4, 4096), maximumBytes + 1))
        var consumed = 0
        while true {
            var srcSize = input.count - consumed
            var dstSize = chunk.count
            let hint = chunk.withUnsafeMutableBytes { out in
                LZ4F_decompress(context, out.baseAddress, &dstSize, input.baseAddress.map { $0 + consumed }, &srcSize, nil)
            }
            if LZ4F_isError(hint) != 0 {
                throw EddyError(.corrupt, "lz4 data does not decompress: \(String(cString: LZ4F_getErrorName(hint)))")
            }
            consumed += srcSize
            output.append(contentsOf: chunk[0..<dstSize])
            if output.count > maximumBytes { throw tooLarge(maximumBytes) }
            if hint == 0 { return output }
            if consumed >= input.count && dstSize == 0 { throw EddyError(.corrupt, "lz4 frame is truncated") }
        }
    }
}
