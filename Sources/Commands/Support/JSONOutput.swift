import Foundation

/// Pretty JSON as udocker prints it (`json.dumps(sort_keys=True, indent=4)`).
enum JSONOutput {
    static func pretty(_ bytes: [UInt8]) -> String {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return String(decoding: bytes, as: UTF8.self) }
        // Foundation indents with two spaces; udocker uses four.
        let text = String(decoding: data, as: UTF8.self)
        return text.components(separatedBy: "\n").map { (line: String) -> String in
            let spaces = line.prefix { $0 == " " }.count
            return String(repeating: " ", count: spaces * 2) + line.dropFirst(spaces)
        }.joined(separator: "\n")
    }
}
