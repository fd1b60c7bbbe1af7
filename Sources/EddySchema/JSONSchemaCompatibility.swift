import EddyCore

/// Decides whether a consumer using one JSON Schema (the reader) accepts every value valid under
/// another (the writer), in the spirit of Confluent's JSON Schema compatibility rules: the reader
/// may widen what it accepts, never narrow it.
///
/// Checked, recursively through `properties`, `items`/`prefixItems`, `additionalProperties` and
/// same-position `oneOf`/`anyOf`/`allOf` branches, after following `$ref`s:
/// `TYPE_NARROWED` (a type the writer allows that the reader does not), `REQUIRED_PROPERTY_ADDED`,
/// `PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL` / `PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`
/// (a property's schema is no longer, or newly, constrained where the other side allows anything),
/// `ADDITIONAL_PROPERTIES_REMOVED`, `ENUM_ARRAY_NARROWED`, `CONST_CHANGED`, `MINIMUM_INCREASED`,
/// `MAXIMUM_DECREASED` (and their exclusive forms), `MIN_LENGTH_INCREASED`, `MAX_LENGTH_DECREASED`,
/// `MIN_ITEMS_INCREASED`, `MAX_ITEMS_DECREASED`, `PATTERN_CHANGED`, `FORMAT_CHANGED`,
/// `COMBINED_TYPE_SUBSCHEMAS_CHANGED`, `NOT_CHANGED`. Checks are conservative: a change they
/// cannot prove safe is reported.
public enum JSONSchemaCompatibility {
    /// Reasons the reader may refuse a value the writer accepts (empty: none found).
    public static func incompatibilities(writer: JSONSchema, reader: JSONSchema) -> [SchemaIncompatibility] {
        var checker = Checker(writerDoc: writer, readerDoc: reader)
        checker.compare(writer.root, reader.root, path: "#", depth: 0)
        return checker.issues
    }

    struct Checker {
        let writerDoc: JSONSchema
        let readerDoc: JSONSchema
        var issues: [SchemaIncompatibility] = []

        mutating func issue(_ path: String, _ rule: String, _ message: String) {
            issues.append(SchemaIncompatibility(path: path, rule: rule, message: message))
        }

        func deref(_ s: JSONValue, _ doc: JSONSchema) -> JSONValue {
            var node = s
            for _ in 0..<32 {
                guard let ref = node["$ref"]?.stringValue, let target = JSONSchema.resolve(ref, root: doc.root, anchors: doc.anchors) else { break }
                node = target
            }
            return node
        }

        static func types(_ s: JSONValue) -> Set<String>? {
            guard let t = s["type"] else { return nil }
            var names = Set(t.stringValue.map { [$0] } ?? t.arrayValue?.compactMap(\.stringValue) ?? [])
            if names.contains("number") { names.insert("integer") }
            return names
        }

        /// Open means "accepts anything": true, {} or absent.
        static func isOpen(_ s: JSONValue?) -> Bool {
            guard let s else { return true }
            if s == .bool(true) { return true }
            if case .object(let m) = s, m.isEmpty { return true }
            return false
        }

        mutating func compare(_ w0: JSONValue, _ r0: JSONValue, path: String, depth: Int) {
            guard depth < 64 else { return }
            let w = deref(w0, writerDoc), r = deref(r0, readerDoc)
            if r == .bool(true) || Checker.isOpen(r) { return }
            if w == .bool(false) { return }
            if r == .bool(false) {
                issue(path, "TYPE_NARROWED", "the reader accepts no value here")
                return
            }
            // Type.
            if let rt = Checker.types(r) {
                let wt = Checker.types(w) ?? ["null", "boolean", "object", "array", "number", "integer", "string"]
                let missing = wt.subtracting(rt)
                if !missing.isEmpty { issue(path, "TYPE_NARROWED", "the reader no longer accepts \(missing.sorted().joined(separator: ", "))") }
            }
            // Enum and const.
            if let re = r["enum"]?.arrayValue {
                if let we = w["enum"]?.arrayValue {
                    let lost = we.filter { !re.contains($0) }
                    if !lost.isEmpty { issue(path, "ENUM_ARRAY_NARROWED", "the reader's enum lacks \(JSONValue.array(lost))") }
                } else if let wc = w["const"] {
                    if !re.contains(wc) { issue(path, "ENUM_ARRAY_NARROWED", "the reader's enum lacks \(wc)") }
                } else {
                    issue(path, "ENUM_ARRAY_NARROWED", "the reader restricts the values to an enum the writer did not have")
                }
            }
            if let rc = r["const"], w["const"] != rc { issue(path, "CONST_CHANGED", "the reader requires the constant \(rc)") }
            // Bounds: the reader's must be at least as wide.
            func lower(_ key: String, _ rule: String) {
                guard let rv = r[key]?.doubleValue else { return }
                guard let wv = w[key]?.doubleValue else { issue(path, rule, "the reader adds \(key) \(rv)"); return }
                if rv > wv { issue(path, rule, "\(key) rose from \(wv) to \(rv)") }
            }
            func upper(_ key: String, _ rule: String) {
                guard let rv = r[key]?.doubleValue else { return }
                guard let wv = w[key]?.doubleValue else { issue(path, rule, "the reader adds \(key) \(rv)"); return }
                if rv < wv { issue(path, rule, "\(key) fell from \(wv) to \(rv)") }
            }
            lower("minimum", "MINIMUM_INCREASED")
            upper("maximum", "MAXIMUM_DECREASED")
            lower("exclusiveMinimum", "EXCLUSIVE_MINIMUM_INCREASED")
            upper("exclusiveMaximum", "EXCLUSIVE_MAXIMUM_DECREASED")
            lower("minLength", "MIN_LENGTH_INCREASED")
            upper("maxLength", "MAX_LENGTH_DECREASED")
            lower("minItems", "MIN_ITEMS_INCREASED")
            upper("maxItems", "MAX_ITEMS_DECREASED")
            lower("minProperties", "MIN_PROPERTIES_INCREASED")
            upper("maxProperties", "MAX_PROPERTIES_DECREASED")
            if let rp = r["pattern"], rp != w["pattern"] { issue(path, "PATTERN_CHANGED", "the reader's pattern \(rp) differs from the writer's") }
            if let rf = r["format"], rf != w["format"] { issue(path, "FORMAT_CHANGED", "the reader's format \(rf) differs from the writer's") }
            if let rm = r["multipleOf"], rm != w["multipleOf"] { issue(path, "MULTIPLE_OF_CHANGED", "the reader's multipleOf \(rm) differs from the writer's") }
            if r["uniqueItems"]?.boolValue == true, w["uniqueItems"]?.boolValue != true { issue(path, "UNIQUE_ITEMS_ADDED", "the reader requires unique items") }
            // Objects.
            let wRequired = Set(w["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            for name in r["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !wRequired.contains(name) {
                issue(path + "/required", "REQUIRED_PROPERTY_ADDED", "the reader requires the property \"\(name)\", which the writer does not")
            }
            let wProps = w["properties"]?.objectValue ?? [], rProps = r["properties"]?.objectValue ?? []
            let wAdditional = w["additionalProperties"], rAdditional = r["additionalProperties"]
            for (name, ws) in wProps {
                let p = path + "/properties/" + JSONSchema.pointerEscape(name)
                if let rs = rProps.first(where: { $0.0 == name })?.1 {
                    compare(ws, rs, path: p, depth: depth + 1)
                } else if rAdditional == .bool(false) {
                    issue(p, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "the writer's property \"\(name)\" is not allowed by the reader")
                } else if let ra = rAdditional, !Checker.isOpen(ra) {
                    compare(ws, ra, path: p, depth: depth + 1)
                }
            }
            for (name, rs) in rProps where !wProps.contains(where: { $0.0 == name }) && !Checker.isOpen(rs) {
                let p = path + "/properties/" + JSONSchema.pointerEscape(name)
                if wAdditional == .bool(false) { continue }  // The writer never writes it.
                if let wa = wAdditional, !Checker.isOpen(wa) {
                    compare(wa, rs, path: p, depth: depth + 1)
                } else {
                    issue(p, "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "the reader constrains the property \"\(name)\", which the writer's open content model allows with any value")
                }
            }
            if rAdditional == .bool(false), wAdditional != .bool(false), w["properties"] != nil || Checker.types(w)?.contains("object") == true {
                issue(path, "ADDITIONAL_PROPERTIES_REMOVED", "the reader closes the content model the writer left open")
            } else if let ra = rAdditional, !Checker.isOpen(ra), ra != .bool(false) {
                if let wa = wAdditional, !Checker.isOpen(wa), wa != .bool(false) {
                    compare(wa, ra, path: path + "/additionalProperties", depth: depth + 1)
                } else if wAdditional != .bool(false) {
                    issue(path, "ADDITIONAL_PROPERTIES_NARROWED", "the reader constrains additional properties the writer allowed with any value")
                }
            }
            // Arrays.
            let wItems = w["items"], rItems = r["items"]
            if let ri = rItems, ri.arrayValue == nil {
                if let wi = wItems, wi.arrayValue == nil {
                    compare(wi, ri, path: path + "/items", depth: depth + 1)
                } else if !Checker.isOpen(ri), wItems == nil {
                    issue(path + "/items", "ITEMS_NARROWED", "the reader constrains items the writer allowed with any value")
                }
            }
            let wPrefix = w["prefixItems"]?.arrayValue ?? wItems?.arrayValue ?? []
            let rPrefix = r["prefixItems"]?.arrayValue ?? rItems?.arrayValue ?? []
            for i in 0..<min(wPrefix.count, rPrefix.count) { compare(wPrefix[i], rPrefix[i], path: path + "/prefixItems/\(i)", depth: depth + 1) }
            // Combinators: compared branch by branch at the same position.
            for key in ["oneOf", "anyOf", "allOf"] {
                guard let rb = r[key]?.arrayValue else { continue }
                guard let wb = w[key]?.arrayValue else {
                    issue(path + "/" + key, "COMBINED_TYPE_SUBSCHEMAS_CHANGED", "the reader adds a \(key) the writer did not have")
                    continue
                }
                if key == "allOf", rb.count > wb.count { issue(path + "/" + key, "COMBINED_TYPE_SUBSCHEMAS_CHANGED", "the reader's allOf has more branches") }
                if key != "allOf", rb.count < wb.count { issue(path + "/" + key, "COMBINED_TYPE_SUBSCHEMAS_CHANGED", "the reader's \(key) has fewer branches") }
                for i in 0..<min(rb.count, wb.count) { compare(wb[i], rb[i], path: path + "/\(key)/\(i)", depth: depth + 1) }
            }
            if let rn = r["not"], rn != w["not"] { issue(path + "/not", "NOT_CHANGED", "the reader's `not` schema differs from the writer's") }
        }
    }
}
