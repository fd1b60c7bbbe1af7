import EddyCore
import EddySchema
import Foundation

/// `eddy bench schema`: encodes and decodes N records (default 1,000,000) of a 10-field Avro
/// schema, typed (`Codable` through ``AvroEncoder``/``AvroDecoder``) and generic (``AvroValue``),
/// and the same values with Foundation's `JSONEncoder`/`JSONDecoder`, in one run; prints records/s,
/// bytes per record and the Avro/JSON speed ratios. Times are the thread's CPU time; each of the
/// six measurements is taken `--rounds` times, interleaved, and the fastest round counts (on a
/// shared machine the slower rounds measure the neighbours). Every round checks that the values
/// come back unchanged. A program that prints figures, not a test.
///
/// Arguments: `--records N`, `--rounds N` (default 3), `--profile typed|typed-encode|generic`
/// (runs only that part, for profilers; no ratios are printed then).
public enum SchemaBenchmark {
    static let schemaText = """
    {"type":"record","name":"Customer","namespace":"eddy.bench","fields":[
      {"name":"id","type":"long"},
      {"name":"name","type":"string"},
      {"name":"email","type":["null","string"],"default":null},
      {"name":"age","type":"int"},
      {"name":"score","type":"double"},
      {"name":"active","type":"boolean"},
      {"name":"country","type":"string"},
      {"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"balance","type":"float"},
      {"name":"tier","type":{"type":"enum","name":"Tier","symbols":["FREE","PRO","ENTERPRISE"]}}
    ]}
    """

    enum Tier: String, Codable, CaseIterable { case free = "FREE", pro = "PRO", enterprise = "ENTERPRISE" }

    struct Customer: Codable, Equatable {
        var id: Int64
        var name: String
        var email: String?
        var age: Int32
        var score: Double
        var active: Bool
        var country: String
        var createdAt: Int64
        var balance: Float
        var tier: Tier
    }

    static func makeCustomers(_ count: Int) -> [Customer] {
        let countries = ["CH", "DE", "FR", "IT", "US", "JP", "BR", "IN"]
        let names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"]
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        return (0..<count).map { i in
            let r = next()
            let name = names[Int(r % UInt64(names.count))]
            return Customer(id: Int64(i) * 7919, name: name,
                            email: r % 4 == 0 ? nil : name.lowercased().replacingOccurrences(of: " ", with: ".") + "@example.com",
                            age: Int32(18 + r % 70), score: Double(r % 10_000) / 100, active: r % 3 != 0,
                            country: countries[Int((r >> 8) % UInt64(countries.count))],
                            createdAt: 1_700_000_000_000 + Int64(r % 100_000_000), balance: Float(r % 1_000_000) / 10,
                            tier: Tier.allCases[Int((r >> 16) % 3)])
        }
    }

    static func generic(_ c: Customer) -> AvroValue {
        .record([.long(c.id), .string(c.name), c.email.map { .union(1, .string($0)) } ?? .union(0, .null), .int(c.age), .double(c.score),
                 .boolean(c.active), .string(c.country), .long(c.createdAt), .float(c.balance),
                 .enumeration(Tier.allCases.firstIndex(of: c.tier)!)])
    }

    /// CPU seconds of this thread spent in `body`: on a machine shared with other work the
    /// wall clock measures the neighbours too, the thread's CPU time only this code.
    static func time(_ body: () throws -> Void) rethrows -> Double {
        func now() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        let start = now()
        try body()
        return now() - start
    }

    /// Runs the benchmark and prints its figures. Throws if a decoded value differs from the original.
    public static func run(arguments: [String]) throws {
        var records = 1_000_000
        if let i = arguments.firstIndex(of: "--records"), i + 1 < arguments.count, let n = Int(arguments[i + 1]), n > 0 { records = n }
        var rounds = 3
        if let i = arguments.firstIndex(of: "--rounds"), i + 1 < arguments.count, let n = Int(arguments[i + 1]), n > 0 { rounds = n }
        var profile: String? = nil
        if let i = arguments.firstIndex(of: "--profile"), i + 1 < arguments.count { profile = arguments[i + 1] }
        let schema = try AvroSchema(parsing: schemaText)
        let customers = makeCustomers(records)
        if profile == "typed" || profile == "typed-encode" {
            let encoder = AvroEncoder(schema: schema), decoder = AvroDecoder(schema: schema)
            for _ in 0..<3 {
                for c in customers {
                    let bytes = try encoder.encode(c)
                    if profile == "typed" { _ = try decoder.decode(Customer.self, from: bytes) }
                }
            }
            return
        }
        let values = customers.map(generic)
        if profile == "generic" {
            for _ in 0..<3 {
                for v in values { _ = try schema.decode(try schema.encode(v)) }
            }
            return
        }
        print("eddy bench schema: \(records) records of a 10-field schema (\(schema.fullName ?? "")), fastest of \(rounds) rounds")

        struct Row { var name: String; var seconds: Double; var bytes: Int }
        var rows: [Row] = [
            Row(name: "avro typed encode", seconds: .infinity, bytes: 0), Row(name: "avro typed decode", seconds: .infinity, bytes: 0),
            Row(name: "avro generic encode", seconds: .infinity, bytes: 0), Row(name: "avro generic decode", seconds: .infinity, bytes: 0),
            Row(name: "json encode (JSONEncoder)", seconds: .infinity, bytes: 0), Row(name: "json decode (JSONDecoder)", seconds: .infinity, bytes: 0),
        ]
        func record(_ row: Int, _ seconds: Double, _ bytes: Int) {
            rows[row].seconds = min(rows[row].seconds, seconds)
            rows[row].bytes = bytes
        }
        let encoder = AvroEncoder(schema: schema), decoder = AvroDecoder(schema: schema)
        let jsonEncoder = JSONEncoder(), jsonDecoder = JSONDecoder()
        for _ in 0..<rounds {
            // Avro, typed.
            var typedEncoded: [[UInt8]] = []
            typedEncoded.reserveCapacity(records)
            let typedEncodeTime = try time { for c in customers { typedEncoded.append(try encoder.encode(c)) } }
            let avroBytes = typedEncoded.reduce(0) { $0 + $1.count }
            record(0, typedEncodeTime, avroBytes)
            var typedDecoded: [Customer] = []
            typedDecoded.reserveCapacity(records)
            let typedDecodeTime = try time { for b in typedEncoded { typedDecoded.append(try decoder.decode(Customer.self, from: b)) } }
            record(1, typedDecodeTime, avroBytes)
            guard typedDecoded == customers else { throw EddyError(.invalidState, "typed Avro round trip changed the values") }
            typedDecoded = []

            // Avro, generic.
            var genericEncoded: [[UInt8]] = []
            genericEncoded.reserveCapacity(records)
            let genericEncodeTime = try time { for v in values { genericEncoded.append(try schema.encode(v)) } }
            record(2, genericEncodeTime, genericEncoded.reduce(0) { $0 + $1.count })
            guard genericEncoded == typedEncoded else { throw EddyError(.invalidState, "generic and typed Avro encodings differ") }
            typedEncoded = []
            var genericDecoded: [AvroValue] = []
            genericDecoded.reserveCapacity(records)
            let genericDecodeTime = try time { for b in genericEncoded { genericDecoded.append(try schema.decode(b)) } }
            record(3, genericDecodeTime, avroBytes)
            guard genericDecoded == values else { throw EddyError(.invalidState, "generic Avro round trip changed the values") }
            genericDecoded = []
            genericEncoded = []

            // Foundation JSON on the same values (the same Codable type).
            var jsonEncoded: [Data] = []
            jsonEncoded.reserveCapacity(records)
            let jsonEncodeTime = try time { for c in customers { jsonEncoded.append(try jsonEncoder.encode(c)) } }
            let jsonBytes = jsonEncoded.reduce(0) { $0 + $1.count }
            record(4, jsonEncodeTime, jsonBytes)
            var jsonDecoded: [Customer] = []
            jsonDecoded.reserveCapacity(records)
            let jsonDecodeTime = try time { for d in jsonEncoded { jsonDecoded.append(try jsonDecoder.decode(Customer.self, from: d)) } }
            record(5, jsonDecodeTime, jsonBytes)
            guard jsonDecoded == customers else { throw EddyError(.invalidState, "JSON round trip changed the values") }
        }

        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(pad("", 28) + pad("records/s", 14) + pad("bytes/record", 14) + "CPU seconds")
        for row in rows {
            let rate = Double(records) / row.seconds
            print(pad(row.name, 28) + pad(String(format: "%.0f", rate), 14) + pad(String(format: "%.1f", Double(row.bytes) / Double(records)), 14)
                  + String(format: "%.3f", row.seconds))
        }
        let (jsonEncodeTime, jsonDecodeTime) = (rows[4].seconds, rows[5].seconds)
        print(String(format: "ratios vs Foundation JSON: typed encode %.1fx, typed decode %.1fx, generic encode %.1fx, generic decode %.1fx; size %.2fx smaller",
                     jsonEncodeTime / rows[0].seconds, jsonDecodeTime / rows[1].seconds, jsonEncodeTime / rows[2].seconds,
                     jsonDecodeTime / rows[3].seconds, Double(rows[4].bytes) / Double(rows[0].bytes)))
    }
}
