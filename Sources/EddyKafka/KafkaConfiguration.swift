import EddyCore

/// How a ``KafkaLog`` reaches its cluster: typed options for the common settings, and any other
/// librdkafka property through ``extra`` (passed to `rd_kafka_conf_set` unchanged; see
/// librdkafka's CONFIGURATION.md).
///
/// Secrets (`sasl.password`, `ssl.key.password`, and every property whose name contains
/// "password" or "secret") never appear in `description`, in log lines or in error messages.
///
/// ```swift
/// var configuration = KafkaConfiguration(bootstrapServers: "broker1:9092,broker2:9092")
/// configuration.securityProtocol = .saslSSL
/// configuration.saslMechanism = "SCRAM-SHA-512"
/// configuration.saslUsername = "eddy"
/// configuration.saslPassword = secret
/// let log = try KafkaLog(configuration: configuration)
/// ```
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    /// `security.protocol` values.
    public enum SecurityProtocol: String, Sendable, Hashable {
        case plaintext, ssl
        case saslPlaintext = "sasl_plaintext"
        case saslSSL = "sasl_ssl"
    }

    /// `bootstrap.servers`: comma-separated `host:port` list.
    public var bootstrapServers: String
    /// `security.protocol` (librdkafka's default, plaintext, when `nil`).
    public var securityProtocol: SecurityProtocol?
    /// `sasl.mechanisms` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, …).
    public var saslMechanism: String?
    /// `sasl.username`.
    public var saslUsername: String?
    /// `sasl.password`. A secret: redacted everywhere.
    public var saslPassword: String?
    /// `ssl.ca.location`.
    public var sslCALocation: String?
    /// `ssl.certificate.location`.
    public var sslCertificateLocation: String?
    /// `ssl.key.location`.
    public var sslKeyLocation: String?
    /// `ssl.key.password`. A secret: redacted everywhere.
    public var sslKeyPassword: String?
    /// How long admin calls, metadata requests and offset look-ups wait at most.
    public var requestTimeoutMilliseconds: Int
    /// Most severe syslog level of librdkafka log lines written to standard error (0...7;
    /// 4 = warnings and worse, the default). Lines are redacted before they are written.
    public var logLevel: Int
    /// Any librdkafka property, passed through unchanged. Wins over the typed options.
    public var extra: [String: String]

    public init(bootstrapServers: String, securityProtocol: SecurityProtocol? = nil, saslMechanism: String? = nil,
                saslUsername: String? = nil, saslPassword: String? = nil, sslCALocation: String? = nil,
                sslCertificateLocation: String? = nil, sslKeyLocation: String? = nil, sslKeyPassword: String? = nil,
                requestTimeoutMilliseconds: Int = 10_000, logLevel: Int = 3, extra: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.securityProtocol = securityProtocol
        self.saslMechanism = saslMechanism
        self.saslUsername = saslUsername
        self.saslPassword = saslPassword
        self.sslCALocation = sslCALocation
        self.sslCertificateLocation = sslCertificateLocation
        self.sslKeyLocation = sslKeyLocation
        self.sslKeyPassword = sslKeyPassword
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
        self.logLevel = logLevel
        self.extra = extra
    }

    /// The librdkafka properties these options stand for (typed options first, `extra` over them).
    public var properties: [String: String] {
        var p: [String: String] = ["bootstrap.servers": bootstrapServers]
        p["security.protocol"] = securityProtocol?.rawValue
        p["sasl.mechanisms"] = saslMechanism
        p["sasl.username"] = saslUsername
        p["sasl.password"] = saslPassword
        p["ssl.ca.location"] = sslCALocation
        p["ssl.certificate.location"] = sslCertificateLocation
        p["ssl.key.location"] = sslKeyLocation
        p["ssl.key.password"] = sslKeyPassword
        p["log_level"] = String(logLevel)
        for (key, value) in extra { p[key] = value }
        return p
    }

    /// The properties with every secret value replaced by `[redacted]`, sorted by name.
    public var description: String {
        let shown = properties.sorted { $0.key < $1.key }.map { key, value in
            "\(key)=\(SecretRedactor.isSecret(key) ? "[redacted]" : value)"
        }
        return "KafkaConfiguration(\(shown.joined(separator: ", ")))"
    }
}
