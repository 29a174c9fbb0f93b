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

    /// `socks5h://user:secret@host` → `socks5h://***@host` (proxies, registry URLs): the whole
    /// userinfo, up to the last `@` of the URL, so a token alone (`https://TOKEN@proxy`) and a
    /// password with an unencoded `/` or `@` are masked too.
    static func maskingCredentials(_ value: String) -> String {
        var out = value
        var searchFrom = out.startIndex
        while let scheme = out[searchFrom...].firstRange(of: "://") {
            let rest = out[scheme.upperBound...]
            let url = rest.prefix { !" ,'\"\t".contains($0) }
            if let at = url.lastIndex(of: "@"), at > url.startIndex {
                out.replaceSubrange(scheme.upperBound..<at, with: "***")
                searchFrom = out.index(scheme.upperBound, offsetBy: 3)
            } else {
                searchFrom = scheme.upperBound
            }
        }
        return out
    }
}
