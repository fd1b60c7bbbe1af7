import EddyCore

/// Confluent's wire format for schema-framed records: magic byte `0`, the schema id as a 4-byte
/// big-endian integer, for Protobuf the message-index array (a zig-zag varint count, then each
/// index as a zig-zag varint; the common `[0]` is written as the single byte `0`), then the payload.
public enum SchemaWireFormat {
    /// The first byte of every framed record.
    public static let magicByte: UInt8 = 0
    /// Most message indexes accepted in a Protobuf frame (nesting depth of the message).
    public static let maximumMessageIndexes = 128

    /// A parsed frame header.
    public struct Header: Hashable, Sendable {
        public var schemaID: Int
        /// Protobuf only: the path of the message in its `.proto` file.
        public var messageIndexes: [Int]?
        /// Where the payload starts in the framed bytes.
        public var payloadOffset: Int
    }

    /// Frames `payload` with `schemaID` (and `messageIndexes` for Protobuf).
    public static func frame(schemaID: Int, messageIndexes: [Int]? = nil, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 6)
        appendHeader(schemaID: schemaID, messageIndexes: messageIndexes, to: &out)
        out.append(contentsOf: payload)
        return out
    }

    /// Appends the header (magic, id, optional message indexes) to `out`.
    public static func appendHeader(schemaID: Int, messageIndexes: [Int]? = nil, to out: inout [UInt8]) {
        out.append(magicByte)
        let id = UInt32(truncatingIfNeeded: schemaID)
        out.append(UInt8(id >> 24))
        out.append(UInt8(truncatingIfNeeded: id >> 16))
        out.append(UInt8(truncatingIfNeeded: id >> 8))
        out.append(UInt8(truncatingIfNeeded: id))
        if let indexes = messageIndexes {
            if indexes == [0] {
                out.append(0)
            } else {
                Varint.appendSigned(Int64(indexes.count), to: &out)
                for i in indexes { Varint.appendSigned(Int64(i), to: &out) }
            }
        }
    }

    /// Parses the header of framed bytes. Throws ``EddyError/Code/serialization`` when the bytes
    /// are shorter than a header, the magic byte is not 0, or the message-index array is malformed.
    public static func parseHeader(_ bytes: [UInt8], hasMessageIndexes: Bool = false) throws -> Header {
        guard bytes.count >= 5 else {
            throw EddyError(.serialization, "a schema-framed record needs at least 5 bytes (magic byte and schema id), this one has \(bytes.count)")
        }
        guard bytes[0] == magicByte else {
            throw EddyError(.serialization, "unknown magic byte \(bytes[0]) (expected 0): the record was not written by a schema registry serializer")
        }
        let id = Int(UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4]))
        guard hasMessageIndexes else { return Header(schemaID: id, messageIndexes: nil, payloadOffset: 5) }
        do {
            return try parseMessageIndexes(bytes, schemaID: id)
        } catch let error as EddyError where error.code != .serialization {
            throw EddyError(.serialization, error.message)
        }
    }

    static func parseMessageIndexes(_ bytes: [UInt8], schemaID id: Int) throws -> Header {
        try bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw, position: 5, context: "Protobuf message indexes")
            let count = try reader.readVarlong()
            if count == 0 { return Header(schemaID: id, messageIndexes: [0], payloadOffset: reader.position) }
            guard count > 0, count <= Int64(maximumMessageIndexes) else {
                throw EddyError(.serialization, "Protobuf message-index count \(count) is outside 0...\(maximumMessageIndexes) (SchemaWireFormat.maximumMessageIndexes)")
            }
            var indexes: [Int] = []
            for _ in 0..<count {
                let i = try reader.readVarlong()
                guard i >= 0, i <= Int64(Int32.max) else { throw EddyError(.serialization, "negative Protobuf message index \(i)") }
                indexes.append(Int(i))
            }
            return Header(schemaID: id, messageIndexes: indexes, payloadOffset: reader.position)
        }
    }
}
