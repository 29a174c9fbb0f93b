import ArgumentParser

struct ShowConfCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "showconf", abstract: "Print all configuration options")
    static var needsRepository: Bool { false }

    func execute(_ context: CommandContext) async throws -> Int32 {
        let c = context.configuration
        print(String(repeating: "-", count: 80))
        print("\t\tConfiguration options")
        for key in c.order { print("\(key) = \(Self.maskingCredentials(c[key]))") }
        print(String(repeating: "-", count: 80))
        return 0
    }

    /// `socks5h://user:secret@host` → `socks5h://user:***@host` (proxies, registry URLs).
    static func maskingCredentials(_ value: String) -> String {
        var out = value
        var searchFrom = out.startIndex
        while let scheme = out[searchFrom...].firstRange(of: "://") {
            let rest = out[scheme.upperBound...]
            let authority = rest.prefix { !"/ ,'\"".contains($0) }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                out.replaceSubrange(out.index(after: colon)..<at, with: "***")
            }
            searchFrom = scheme.upperBound
        }
        return out
    }
}
