import EddyCore
@testable import EddyKafka
import Foundation
import Testing

@Suite struct KafkaConfigurationTests {
    static let secret = "hunter2-\(UInt32.random(in: 0...UInt32.max))"

    @Test func secretsNeverAppearInTheDescriptionOrInErrorMessages() throws {
        var configuration = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")
        configuration.saslPassword = Self.secret
        configuration.sslKeyPassword = Self.secret + "-key"
        configuration.extra["sasl.oauthbearer.client.secret"] = Self.secret + "-oauth"
        #expect(!configuration.description.contains(Self.secret))
        #expect(configuration.description.contains("sasl.password=[redacted]"))
        #expect(configuration.properties["sasl.password"] == Self.secret)

        // An invalid secret value: the error names the property, never the value.
        var invalid = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")
        invalid.extra["ssl.key.password"] = Self.secret
        invalid.extra["sasl.mechanisms"] = "NOT-A-MECHANISM-\(Self.secret)"
        invalid.securityProtocol = .saslPlaintext
        invalid.saslPassword = Self.secret
        do {
            _ = try KafkaLog(configuration: invalid)
            Issue.record("an invalid SASL mechanism was accepted")
        } catch let error as EddyError {
            #expect(!error.description.contains(Self.secret), "\(error)")
        }
        var badValue = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")
        badValue.extra["security.protocol"] = "nonsense-\(Self.secret)"
        badValue.saslPassword = "nonsense-\(Self.secret)"
        do {
            _ = try KafkaLog(configuration: badValue)
            Issue.record("an invalid security.protocol was accepted")
        } catch let error as EddyError {
            #expect(error.code == .invalidArgument)
            #expect(!error.description.contains(Self.secret), "\(error)")
        }
    }

    @Test func theRedactorReplacesEverySecretValueInText() {
        let redactor = SecretRedactor(properties: ["sasl.password": "pw-1", "ssl.key.password": "pw-22", "client.id": "visible"])
        #expect(redactor.redact("auth failed for pw-1 and pw-22 as visible") == "auth failed for [redacted] and [redacted] as visible")
    }
}
