import EddyCore
import EddyStreams

/// `enrich-orders`: a stream of orders enriched with each customer's current row from a table
/// (a stream–table left join on the key).
///
/// Inputs, co-partitioned (the same partition count; keys partition alike on both):
/// - `--orders` (default `orders`): key = customer id (UTF-8), value = a JSON object;
/// - `--customers` (default `customers`): key = customer id (UTF-8), value = a JSON object,
///   the customer's latest row; a null value (tombstone) deletes the row.
///
/// Output (`--output`, default `enriched-orders`): one record per order, sent at once with the
/// order's key and timestamp. Its value is the order's members in their order followed by the
/// customer's members that the order does not have (on a name clash the order's value wins),
/// as compact JSON: order `{"id":1,"total":12}` with customer `{"name":"Ann","id":"c1"}`
/// gives `{"id":1,"total":12,"name":"Ann"}`. An order whose customer has no row (never seen
/// or deleted) passes through unchanged (left join). Only customer rows processed before the
/// order count: a table update never re-sends earlier orders.
///
/// Orders and customers with a null key, and orders with a null value, are skipped. A value
/// that is not a JSON object is a deserialization error: the worker stops and names the topic,
/// partition and offset. The table lives in the RocksDB store `customers` (changelog
/// `<app>-customers-changelog`).
public enum EnrichOrdersTopology {
    /// The registry entry.
    public static let registered = RegisteredTopology(
        name: "enrich-orders",
        summary: "orders merged with their customer's row (stream-table left join)",
        options: [
            .init(name: "orders", defaultValue: "orders", help: "topic of orders: customer id -> JSON object"),
            .init(name: "customers", defaultValue: "customers", help: "table topic of customers: customer id -> JSON object"),
            .init(name: "output", defaultValue: "enriched-orders", help: "topic of customer id -> order merged with customer (JSON)"),
        ],
        inputOption: "orders",
        make: { try topology(orders: $0["orders"]!, customers: $0["customers"]!, output: $0["output"]!) })

    /// The order's members, then the customer's members the order lacks.
    static func merge(_ order: [(String, JSONValue)], _ customer: [(String, JSONValue)]?) -> [(String, JSONValue)] {
        guard let customer else { return order }
        var names = Set<String>()
        for (name, _) in order { names.insert(name) }
        var merged = order
        for member in customer where names.insert(member.0).inserted { merged.append(member) }
        return merged
    }

    /// The enrichment topology reading `orders` and `customers` and writing `output`.
    public static func topology(orders: String = "orders", customers: String = "customers",
                                output: String = "enriched-orders") throws -> Topology {
        let builder = StreamsBuilder()
        let table = builder.table(customers, key: Serdes.string, value: JSONObjectSerde(), materializedAs: "customers")
        builder.stream(orders, key: Serdes.string, value: JSONObjectSerde())
            .leftJoin(table, named: "with-customer") { order, customer in merge(order, customer) }
            .to(output, key: Serdes.string, value: JSONObjectSerde())
        return try builder.build()
    }
}
