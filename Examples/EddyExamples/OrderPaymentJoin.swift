import Eddy

/// Orders matched with their payments: a stream–stream join on the order id within 5
/// minutes either way. Matched pairs go to `paid-orders` as soon as the second one arrives;
/// an order with no payment goes to `unpaid-orders` once its window has closed (5 minutes +
/// 1 minute grace after the order, in stream time), not before.
public enum OrderPaymentJoin {
    public struct Order: Codable, Hashable, Sendable {
        public var customer: String
        public var amount: Int
        public init(customer: String, amount: Int) { self.customer = customer; self.amount = amount }
    }
    public struct Payment: Codable, Hashable, Sendable {
        public var amount: Int
        public init(amount: Int) { self.amount = amount }
    }
    public struct PaidOrder: Codable, Hashable, Sendable {
        public var customer: String
        public var ordered: Int
        public var paid: Int
        public init(customer: String, ordered: Int, paid: Int) { self.customer = customer; self.ordered = ordered; self.paid = paid }
    }

    public static let orders = "orders"
    public static let payments = "payments"
    public static let paid = "paid-orders"
    public static let unpaid = "unpaid-orders"
    public static let windows = JoinWindows.of(timeDifference: 5 * 60_000, grace: 60_000)

    /// The topology.
    public static func topology() throws -> Topology {
        let builder = StreamsBuilder()
        let orderStream = builder.stream(orders, key: Serdes.string, value: Serdes.json(Order.self))
        let paymentStream = builder.stream(payments, key: Serdes.string, value: Serdes.json(Payment.self))
        let joined = orderStream.leftJoin(paymentStream, windows: windows, named: "order-payment") { order, payment in
            (order, payment)
        }
        let branches = joined.split(named: "payment-")
            .branch("received") { _, pair in pair.1 != nil }
            .defaultBranch("missing")
        branches["payment-received"]!
            .mapValues { pair in PaidOrder(customer: pair.0.customer, ordered: pair.0.amount, paid: pair.1!.amount) }
            .to(paid, key: Serdes.string, value: Serdes.json(PaidOrder.self))
        branches["payment-missing"]!
            .mapValues { pair in pair.0 }
            .to(unpaid, key: Serdes.string, value: Serdes.json(Order.self))
        return try builder.build()
    }
}
