/// Naming rules shared by every backend, checked before any path is built from a name.
public enum Names {
    /// Kafka's limit on topic name length.
    public static let maximumTopicNameLength = 249
    /// Limit on group ids, application ids and store names (they become file and topic names).
    public static let maximumIdentifierLength = 249

    /// Throws ``EddyError/Code/invalidName`` unless `name` follows Kafka's topic rules:
    /// 1–249 characters from `[a-zA-Z0-9._-]`, and not `.` or `..`.
    public static func validateTopic(_ name: String) throws {
        try validate(name, what: "topic name", maximumLength: maximumTopicNameLength)
    }

    /// The same rules for other names that become paths or topic names (group ids,
    /// application ids, store names).
    public static func validate(_ name: String, what: String, maximumLength: Int = maximumIdentifierLength) throws {
        if name.isEmpty { throw EddyError(.invalidName, "\(what) is empty") }
        let utf8 = name.utf8
        if utf8.count > maximumLength {
            throw EddyError(.invalidName, "\(what) is \(utf8.count) characters long; the limit is \(maximumLength)")
        }
        if name == "." || name == ".." {
            throw EddyError(.invalidName, "\(what) '\(name)' is not allowed")
        }
        for byte in utf8 where !isLegal(byte) {
            let shown = name.count > 60 ? String(name.prefix(60)) + "…" : name
            throw EddyError(.invalidName,
                            "\(what) '\(shown)' contains '\(Character(Unicode.Scalar(byte)))'; only a-z, A-Z, 0-9, '.', '_' and '-' are allowed")
        }
    }

    @inline(__always) static func isLegal(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
