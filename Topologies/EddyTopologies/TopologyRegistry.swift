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
        /// The value used when the option is not given.
        public var defaultValue: String
        /// One line for help texts: what the option names or sets.
        public var help: String
        /// An option called `name` (without dashes) with its default and help line.
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

    /// The topology options of a command line, `--name value` or `--name=value` each (what
    /// `eddy run NAME` and `eddy describe NAME` do not parse themselves). Throws
    /// ``EddyError/Code/invalidArgument`` for an argument that is not an option, an option
    /// without a value, or an option given twice; the names are checked by ``resolve(_:)``.
    public static func parseOptions(_ arguments: [String]) throws -> [String: String] {
        var options: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw EddyError(.invalidArgument, "unexpected argument '\(argument)'; topology options are --name VALUE")
            }
            var name = String(argument.dropFirst(2))
            let value: String
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else {
                guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                    throw EddyError(.invalidArgument, "option --\(name) needs a value")
                }
                value = arguments[index]
                index += 1
            }
            guard options.updateValue(value, forKey: name) == nil else {
                throw EddyError(.invalidArgument, "option --\(name) is given twice")
            }
        }
        return options
    }

    /// Builds the topology with `given` options over the defaults. Unknown options and bad
    /// values (a window size that is not a positive number of milliseconds, say) throw
    /// ``EddyError/Code/invalidArgument`` naming the option.
    public func topology(_ given: [String: String] = [:]) throws -> Topology {
        try make(resolve(given))
    }

    /// The longest window, join window or grace period a registered topology accepts (365
    /// days, in milliseconds): longer ones are almost surely a unit mistake, and would keep
    /// every record of a year in the stores.
    public static let maximumDurationMilliseconds: Int64 = 365 * 24 * 3_600_000

    /// Option `name` of resolved `options` as a whole number of milliseconds in
    /// `minimum...maximumDurationMilliseconds`; anything else throws
    /// ``EddyError/Code/invalidArgument`` naming the option, the value and the range.
    static func milliseconds(_ name: String, in options: [String: String], minimum: Int64) throws -> Int64 {
        let text = options[name] ?? ""
        guard let value = Int64(text), value >= minimum, value <= maximumDurationMilliseconds else {
            throw EddyError(.invalidArgument, "--\(name) must be a whole number of milliseconds from \(minimum) to \(maximumDurationMilliseconds) (365 days), not '\(text)'")
        }
        return value
    }
}

/// The topologies under `Topologies/`, by name.
public enum TopologyRegistry {
    /// Every registered topology, sorted by name.
    public static let all: [RegisteredTopology] = [
        EnrichOrdersTopology.registered, JoinClicksTopology.registered, WindowedCountTopology.registered,
        WordCountTopology.registered,
    ]

    /// Every topology's options with their defaults, for help texts:
    /// `wordcount: --input (words), --output (word-counts); …`.
    public static var optionsSummary: String {
        all.map { topology in
            "\(topology.name): " + topology.options.map { "--\($0.name) (\($0.defaultValue))" }.joined(separator: ", ")
        }.joined(separator: "; ")
    }

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
