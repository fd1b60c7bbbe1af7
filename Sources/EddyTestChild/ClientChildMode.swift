/// The EddyTestChild modes of the embedded log's client side (main.swift dispatches here).
enum ClientChildMode {
    static func run(_ mode: String, _ arguments: [String]) -> Never {
        switch mode {
        case "eos-copy": EOSCopyMode.run(arguments)
        default: HoldLockMode.run(arguments)
        }
    }
}
