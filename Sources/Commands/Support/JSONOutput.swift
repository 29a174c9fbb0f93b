import FoundationEssentials
import UDockerSystem

/// Pretty JSON as udocker prints it (`json.dumps(sort_keys=True, indent=4)`).
enum JSONOutput {
    static func pretty(_ bytes: [UInt8]) -> String {
        guard let obj = JSONAny.parse(bytes),
            let data = try? JSONAny.serialize(obj, options: [.prettyPrinted, .withoutEscapingSlashes])
        else { return String(decoding: bytes, as: UTF8.self) }
        // Foundation indents with two spaces; udocker uses four.
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).map { (line: String) -> String in
            let spaces = line.prefix { $0 == " " }.count
            return String(repeating: " ", count: spaces * 2) + line.dropFirst(spaces)
        }.joined(separator: "\n")
    }
}
