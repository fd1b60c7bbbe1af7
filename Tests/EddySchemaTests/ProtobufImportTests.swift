import EddyCore
import EddySchema
import Testing

/// `.proto` files that import other registered files (Confluent's references, named by import path).
enum ProtoImports {
    static let money = #"syntax = "proto3"; package common; message Money { int64 units = 1; string currency = 2; }"#
    /// Money's `units` changed to a type that does not read the same bytes.
    static let moneyBroken = #"syntax = "proto3"; package common; message Money { string units = 1; string currency = 2; }"#
    /// Money with a field added (fine both ways).
    static let moneyWithNanos = #"syntax = "proto3"; package common; message Money { int64 units = 1; string currency = 2; int32 nanos = 3; }"#
    static let status = #"syntax = "proto3"; package common; enum Status { UNKNOWN = 0; PAID = 1; } message Note { string text = 1; }"#
    /// Re-exports money.proto to whoever imports it.
    static let reexport = #"syntax = "proto3"; package common; import public "common/money.proto"; message Price { Money amount = 1; }"#
    static let order = #"syntax = "proto3"; package shop; import "common/money.proto"; message Order { string id = 1; common.Money total = 2; map<string, common.Money> parts = 3; }"#
}

@Suite struct ProtobufImportTests {
    static func parse(_ text: String, _ imports: [String: String] = [:]) throws -> ProtobufSchema {
        var files: [String: ProtobufSchema] = [:]
        for (path, text) in imports { files[path] = try ProtobufSchema(parsing: text) }
        return try ProtobufSchema(parsing: text, imports: files)
    }

    @Test func importedTypesResolveByFullNameAndRelativeToTheImportingScope() throws {
        let order = try Self.parse(ProtoImports.order, ["common/money.proto": ProtoImports.money])
        let fields = try #require(order.allMessages["shop.Order"]).fields
        #expect(fields.map(\.type) == ["string", "common.Money", "map<string,common.Money>"])
        #expect(order.importedMessages.keys.sorted() == ["common.Money"])
        // The same package: a bare name finds the imported message, as protoc does.
        let sibling = #"syntax = "proto3"; package common; import "common/money.proto"; message Wallet { Money cash = 1; .common.Money card = 2; }"#
        let wallet = try Self.parse(sibling, ["common/money.proto": ProtoImports.money])
        #expect(try #require(wallet.allMessages["common.Wallet"]).fields.map(\.type) == ["common.Money", "common.Money"])
        // An enum from an import.
        let noted = #"syntax = "proto3"; package shop; import "common/status.proto"; message Paid { common.Status status = 1; common.Note note = 2; }"#
        let paid = try Self.parse(noted, ["common/status.proto": ProtoImports.status])
        #expect(paid.importedEnums.keys.sorted() == ["common.Status"])
        // The identity stays the file's own text.
        #expect(order.canonicalText == (try ProtobufSchema(parsing: ProtoImports.order)).canonicalText)
    }

    @Test func aTypeTheGivenImportsDoNotDefineIsRefusedWhileAnImportNotGivenIsTakenOnTrust() throws {
        let typo = #"syntax = "proto3"; package shop; import "common/money.proto"; message Order { common.Mony total = 1; }"#
        #expect(throws: EddyError.self) { try Self.parse(typo, ["common/money.proto": ProtoImports.money]) }
        do {
            _ = try Self.parse(typo, ["common/money.proto": ProtoImports.money])
        } catch let error as EddyError {
            #expect(error.message.contains("common.Mony"), "\(error.message)")
        }
        // Without the file, a qualified name from an import is accepted unchecked (well-known types).
        #expect(try Self.parse(typo).allMessages["shop.Order"]?.fields.first?.type == "common.Mony")
        // A bare name from an import that was not given is unknown.
        let bare = #"syntax = "proto3"; package common; import "common/money.proto"; message Wallet { Money cash = 1; }"#
        #expect(throws: EddyError.self) { try Self.parse(bare) }
        #expect(try Self.parse(bare, ["common/money.proto": ProtoImports.money]).allMessages["common.Wallet"] != nil)
        // One given import and one not: trust for the missing one stays.
        let two = #"syntax = "proto3"; package shop; import "common/money.proto"; import "google/protobuf/timestamp.proto"; message Order { common.Money total = 1; google.protobuf.Timestamp at = 2; }"#
        #expect(try Self.parse(two, ["common/money.proto": ProtoImports.money]).allMessages["shop.Order"]?.fields.count == 2)
        // Files given but not imported are not visible.
        let unimported = #"syntax = "proto3"; package common; message Wallet { Money cash = 1; }"#
        #expect(throws: EddyError.self) { try Self.parse(unimported, ["common/money.proto": ProtoImports.money]) }
    }

    @Test func importPublicReexportsTheFilesItImports() throws {
        let money = try ProtobufSchema(parsing: ProtoImports.money)
        let price = try ProtobufSchema(parsing: ProtoImports.reexport, imports: ["common/money.proto": money])
        #expect(price.publicImports == ["common/money.proto"])
        let cart = #"syntax = "proto3"; package shop; import "common/price.proto"; message Cart { common.Price price = 1; common.Money paid = 2; }"#
        let parsed = try ProtobufSchema(parsing: cart, imports: ["common/price.proto": price])
        #expect(parsed.importedMessages.keys.sorted() == ["common.Money", "common.Price"])
        // A plain import is not re-exported.
        let plain = try ProtobufSchema(parsing: ProtoImports.reexport.replacingOccurrences(of: "import public", with: "import"),
                                       imports: ["common/money.proto": money])
        #expect(throws: EddyError.self) { try ProtobufSchema(parsing: cart, imports: ["common/price.proto": plain]) }
    }

    @Test func compatibilityFollowsFieldsIntoImportedMessages() throws {
        let v1 = try Self.parse(ProtoImports.order, ["common/money.proto": ProtoImports.money])
        let broken = try Self.parse(ProtoImports.order, ["common/money.proto": ProtoImports.moneyBroken])
        let grown = try Self.parse(ProtoImports.order, ["common/money.proto": ProtoImports.moneyWithNanos])
        let issues = ProtobufCompatibility.incompatibilities(writer: v1, reader: broken)
        #expect(issues.map(\.rule) == ["FIELD_SCALAR_KIND_CHANGED"], "\(issues)")
        #expect(issues.map(\.path) == ["common.Money.units"])
        #expect(ProtobufCompatibility.incompatibilities(writer: broken, reader: v1).map(\.path) == ["common.Money.units"])
        #expect(ProtobufCompatibility.incompatibilities(writer: v1, reader: grown).isEmpty)
        #expect(ProtobufCompatibility.incompatibilities(writer: grown, reader: v1).isEmpty)
        // Reached only through a map value.
        let mapOnly = #"syntax = "proto3"; package shop; import "common/money.proto"; message Ledger { map<string, common.Money> entries = 1; }"#
        let ledger1 = try Self.parse(mapOnly, ["common/money.proto": ProtoImports.money])
        let ledger2 = try Self.parse(mapOnly, ["common/money.proto": ProtoImports.moneyBroken])
        #expect(ProtobufCompatibility.incompatibilities(writer: ledger1, reader: ledger2).map(\.path) == ["common.Money.units"])
        // An imported message no field reaches is not the writer's concern.
        let unused = #"syntax = "proto3"; package shop; import "common/money.proto"; message Order { string id = 1; }"#
        #expect(ProtobufCompatibility.incompatibilities(writer: try Self.parse(unused, ["common/money.proto": ProtoImports.money]),
                                                        reader: try Self.parse(unused, ["common/money.proto": ProtoImports.moneyBroken])).isEmpty)
        // A reader that cannot see the imported message (its import not given) is not blamed for it.
        #expect(ProtobufCompatibility.incompatibilities(writer: v1, reader: try Self.parse(ProtoImports.order)).isEmpty)
    }

    @Test func anImportedEnumIsAnEnumNotAMessage() throws {
        let v1 = #"syntax = "proto3"; package shop; import "common/status.proto"; message Paid { common.Status status = 1; }"#
        let v2 = #"syntax = "proto3"; package shop; import "common/status.proto"; message Paid { common.Note status = 1; }"#
        let imports = ["common/status.proto": ProtoImports.status]
        let issues = ProtobufCompatibility.incompatibilities(writer: try Self.parse(v1, imports), reader: try Self.parse(v2, imports))
        #expect(issues.map(\.rule) == ["FIELD_KIND_CHANGED"], "\(issues)")
        // Taken on trust (imports not given), both are assumed to be messages of another name.
        let trusted = ProtobufCompatibility.incompatibilities(writer: try Self.parse(v1), reader: try Self.parse(v2))
        #expect(trusted.map(\.rule) == ["FIELD_NAMED_TYPE_CHANGED"], "\(trusted)")
    }

    @Test func theRegistryChecksANewVersionAgainstTheImportedFilesOfItsReferences() throws {
        let storage = InMemorySchemaStorage()
        let registry = try SchemaRegistry(storage: storage)
        try registry.register(subject: "money", type: .protobuf, schema: ProtoImports.money)
        try registry.setCompatibilityLevel(.none, subject: "money")
        try registry.register(subject: "money", type: .protobuf, schema: ProtoImports.moneyBroken)
        try registry.register(subject: "money", type: .protobuf, schema: ProtoImports.moneyWithNanos)
        let reference = { (version: Int) in [SchemaReference(name: "common/money.proto", subject: "money", version: version)] }
        let v1 = try registry.register(subject: "orders-value", type: .protobuf, schema: ProtoImports.order, references: reference(1))

        // The same text importing the broken Money cannot follow (BACKWARD, the default).
        do {
            try registry.register(subject: "orders-value", type: .protobuf, schema: ProtoImports.order, references: reference(2))
            Issue.record("an order importing an incompatible Money was registered")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 409)
            #expect(error.incompatibilities.map(\.path).contains("common.Money.units"), "\(error.incompatibilities)")
        }
        let verdict = try registry.incompatibilities(subject: "orders-value", type: .protobuf, schema: ProtoImports.order, references: reference(2))
        #expect(verdict.map(\.rule) == ["FIELD_SCALAR_KIND_CHANGED"], "\(verdict)")
        // The compatible Money is fine, and is another schema (other references): a new id.
        let v2 = try registry.register(subject: "orders-value", type: .protobuf, schema: ProtoImports.order, references: reference(3))
        #expect(v2 != v1)
        // A type the referenced file does not define is refused (42201) naming it.
        let typo = ProtoImports.order.replacingOccurrences(of: "common.Money total", with: "common.Mony total")
        do {
            try registry.register(subject: "orders-value", type: .protobuf, schema: typo, references: reference(1))
            Issue.record("an unknown imported type was accepted")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 42201)
            #expect(error.message.contains("common.Mony"), "\(error.message)")
        }

        // Rebuilt from its log, the registry resolves the imports again.
        let reopened = try SchemaRegistry(storage: storage)
        guard case .protobuf(let parsed) = try reopened.parsedSchema(id: v1) else { Issue.record("not Protobuf"); return }
        #expect(parsed.importedMessages["common.Money"]?.fields.map(\.type) == ["int64", "string"])
        #expect(throws: SchemaRegistryError.self) {
            try reopened.register(subject: "orders-value", type: .protobuf, schema: ProtoImports.order, references: reference(2))
        }
    }
}
