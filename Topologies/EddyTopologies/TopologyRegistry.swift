import EddyCore
import EddyStreams

/// A topology that `eddy run NAME` and `eddy describe NAME` know by name.
///
/// Each takes its topic names as options (`--input`, `--output`, …) with documented defaults,
/// and builds a fresh ``Topology`` value from them.
public struct RegisteredTopology: Sendable {
    /// One option of a registered topology, with its default.
    public struct Option: Hashable, Sendable {
        /// The option name without dashes (`input`).
        public var name: String
        public var defaultValue: String
        public var help: String
        public init(name: String, defaultValue: String, help: String) {
            self.name = name
            self.defaultValue = defaultValue
            self.help = help
        }
    }

    /// The registry name (`wordcount`).
    public var name: String
    /// One line saying what it computes.
    public var summary: String
    public var options: [Option]
    /// The option that names the topic the topology reads (its partition count sizes the
    /// topics the runtime creates).
    public var inputOption: String
    let make: @Sendable (_ options: [String: String]) throws -> Topology

    /// The options with their defaults, overridden by `given` (unknown names throw
    /// ``EddyError/Code/invalidArgument``).
    public func resolve(_ given: [String: String]) throws -> [String: String] {
        var values: [String: String] = [:]
        for option in options { values[option.name] = option.defaultValue }
        for (name, value) in given {
            guard values[name] != nil else {
                throw EddyError(.invalidArgument, "topology \(self.name) has no option --\(name); it takes \(options.map { "--\($0.name)" }.joined(separator: ", "))")
            }
            values[name] = value
        }
        return values
    }

    /// Builds the topology with `given` options over the defaults.
    public func topology(_ given: [String: String] = [:]) throws -> Topology {
        try make(resolve(given))
    }
}

/// The topologies under `Topologies/`, by name.
public enum TopologyRegistry {
    /// Every registered topology, sorted by name.
    public static let all: [RegisteredTopology] = [WordCountTopology.registered]

    /// The topology called `name`; throws ``EddyError/Code/invalidArgument`` listing the known
    /// names when there is none.
    public static func named(_ name: String) throws -> RegisteredTopology {
        guard let found = all.first(where: { $0.name == name }) else {
            throw EddyError(.invalidArgument, "no topology named '\(name)'; known: \(all.map(\.name).joined(separator: ", "))")
        }
        return found
    }
}

/// An `Int64` as a JSON number (its decimal digits in UTF-8). Deserialising anything else
/// throws ``EddyError/Code/serialization``.
public struct JSONInt64Serde: Serde {
    public init() {}
    public func serialize(_ value: Int64) throws -> [UInt8] { Array(String(value).utf8) }
    public func deserialize(_ bytes: [UInt8]) throws -> Int64 {
        guard let text = String(validating: bytes, as: UTF8.self),
              let value = Int64(text) else {
            throw EddyError(.serialization, "\(bytes.count) bytes are not a JSON integer")
        }
        return value
    }
}
